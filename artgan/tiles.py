"""Tiling: running a network on pictures too large to run whole, one tile at a time.

Every tiled run in artgan takes its tile positions from here. There are two ways to tile,
because networks differ in what a tile edge does to them:

* **Blended** (``run_tiled``, used by ``artgan.infer.translate``): tiles overlap, spread
  evenly (``tile_starts``) and aligned to the network's stride multiple, so strided layers
  sample the same grid in every tile as in the whole picture. Neighbouring tiles cross-fade
  with raised-cosine weights (``_blend_weights``). A generator's output is a picture, and
  two tiles that each see the border differently would leave a visible seam; blending hides
  it. ``tile_size`` picks the smallest tile that needs no more tiles, wasting less work on
  overlaps.
* **Cored** (``run_cored``, used by the restore plugin's damage detector): the picture is cut
  into ``core`` px pieces without overlap (``cores``), each run with ``margin`` px of context
  around it (``context``, reflected beyond the picture's border); only the core of each
  output is kept. Every pixel is computed exactly once, so the answers of a per-pixel
  classifier never mix, and nothing is computed twice but the margins.

Restore's inpainting windows (``artgan_restore.windows``) are a third, sparse use of the cored
layout: they take the same ``cores`` grid, but run only the cores that hold damage, and
read a window ``centred`` on the core and pushed back inside the picture rather than padded
by reflection, because an inpainter has to read real paint around a hole, and a reflection
would copy the hole into its own context. Which cores run, at which scale and in which
order is about damage, not tiling, and stays in that plugin.

Tiles are converted to float on their own (``artgan.convert.to_float``), so a uint8 picture
is never copied whole into float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from artgan.convert import output_dtype, quantize_, to_float
from artgan.errors import ArtganError

# --- positions along one axis -------------------------------------------------------------


def tile_size(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile (a multiple of ``multiple``, at most ``tile``) that covers ``length``
    with as few tiles as ``tile`` would: less work is wasted on overlaps."""
    if length <= tile:
        return length
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count / multiple) * multiple
    return min(size, tile)


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least about ``overlap``
    shared pixels, spread evenly and aligned to ``multiple`` (so strided layers see the same
    sampling grid in every tile as in the whole image)."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    span = (length - tile) / (count - 1)
    return [round(i * span / multiple) * multiple for i in range(count)]


def cores(length: int, core: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the ``core`` px pieces that cut ``[0, length)`` without overlap, from
    0 on (the last one shorter where ``core`` does not divide ``length``)."""
    return [(start, min(length, start + core)) for start in range(0, length, core)]


def context(start: int, end: int, margin: int, length: int) -> tuple[int, int]:
    """``[start, end)`` widened by ``margin`` on each side, cut to ``[0, length)``: what a core
    reads of the picture."""
    return max(0, start - margin), min(length, end + margin)


def centred(start: int, end: int, span: int, length: int) -> tuple[int, int]:
    """``span`` px centred on ``[start, end)``, moved inside ``[0, length)`` (all of it when
    shorter than ``span``): context that is all picture, never reflection."""
    if length <= span:
        return 0, length
    lower = (start + end) // 2 - span // 2
    lower = min(max(0, lower), length - span)
    return lower, lower + span


def _context_pads(start: int, end: int, lower: int, upper: int, margin: int,
                  multiple: int) -> tuple[int, int]:
    """Padding before and after a crop ``[lower, upper)`` of core ``[start, end)`` so that the
    core starts ``margin`` px in, ends ``margin`` px or more from the far side, and the padded
    length is a multiple of ``multiple``."""
    before = margin - (start - lower)
    padded = 2 * margin + end - start
    padded += -padded % multiple
    return before, padded - before - (upper - lower)


# --- cored tiles: each pixel from one tile, context in the margins ------------------------


def run_cored(
    run: Callable[[Tensor], Tensor],
    image: Tensor,
    core: int,
    margin: int,
    multiple: int = 1,
    device: torch.device | None = None,
    within: Tensor | None = None,
) -> Iterator[tuple[tuple[slice, slice], Tensor]]:
    """Apply ``run`` to a (C, H, W) picture (uint8, or float in [0, 1]) in ``core`` px tiles
    read with ``margin`` px of context each side; yield ``((rows, cols), output)`` per tile,
    rows first, the output (C', h, w) of its core alone (on ``run``'s device).

    ``run`` gets one (1, C, h', w') float32 tile at a time on ``device`` (default: the
    picture's), as ``core_context`` cuts it. With ``within`` ((H, W) bool), only the tiles
    whose core holds one of its pixels are run: each tile's output is the same either way.
    """
    height, width = image.shape[-2:]
    for top, bottom in cores(height, core):
        for left, right in cores(width, core):
            where = (slice(top, bottom), slice(left, right))
            if within is not None and not bool(within[where].any()):
                continue
            out = run(core_context(image, where, margin, multiple, device))
            yield where, out[0, :, margin:margin + bottom - top, margin:margin + right - left]


def core_context(image: Tensor, where: tuple[slice, slice], margin: int, multiple: int = 1,
                 device: torch.device | None = None) -> Tensor:
    """The (1, C, h', w') float32 tile that shows the core ``where`` (rows, cols) of a
    (C, H, W) picture with ``margin`` px of context each side, on ``device`` (default: the
    picture's): the core starts ``margin`` px in and the sides are multiples of ``multiple``.

    Context beyond the picture's border is reflected (replicated where the crop is too small
    to reflect). The crop is converted to float before it is moved (as the detector always
    did: CUDA divides by a scalar as a product with its reciprocal, which can differ in the
    last bit).
    """
    (top, bottom), (left, right) = ((s.start, s.stop) for s in where)
    height, width = image.shape[-2:]
    y0, y1 = context(top, bottom, margin, height)
    x0, x1 = context(left, right, margin, width)
    crop = to_float(image[:, y0:y1, x0:x1]).to(device or image.device).unsqueeze(0)
    pads = (*_context_pads(left, right, x0, x1, margin, multiple),
            *_context_pads(top, bottom, y0, y1, margin, multiple))
    mode = "reflect" if max(pads) < min(crop.shape[-2:]) else "replicate"
    return F.pad(crop, pads, mode=mode)


# --- blended tiles: overlapping, cross-faded ----------------------------------------------


def _blend_weights(starts: list[int], size: int, length: int, device: torch.device) -> list[Tensor]:
    """1-D weights per tile: raised-cosine cross-fades over each overlap, summing to one."""
    weights = []
    for i, start in enumerate(starts):
        w = torch.ones(size, dtype=torch.float64)
        if i > 0:
            width = starts[i - 1] + size - start
            ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(width) + 0.5) / width)
            w[:width] = torch.minimum(w[:width], ramp.double())
        if i < len(starts) - 1:
            width = start + size - starts[i + 1]
            ramp = 0.5 + 0.5 * torch.cos(math.pi * (torch.arange(width) + 0.5) / width)
            w[size - width:] = torch.minimum(w[size - width:], ramp.double())
        weights.append(w)
    total = torch.zeros(length, dtype=torch.float64)
    for start, w in zip(starts, weights, strict=True):
        total[start:start + size] += w
    return [
        (w / total[start:start + size]).float().to(device)
        for start, w in zip(starts, weights, strict=True)
    ]


def run_tiled(
    network: Callable[[Tensor], Tensor],
    image: Tensor,
    tile: int = 512,
    overlap: int = 64,
    batch: int = 1,
    multiple: int = 4,
    device: torch.device | None = None,
    out_dtype: torch.dtype | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Apply ``network`` (a module, or a backend's compiled network) to (1, C, H, W)
    ``image`` tile by tile and blend the tiles seamlessly.

    ``H`` and ``W`` must be multiples of ``multiple``; so must ``tile``. ``batch`` tiles go
    through the network together, on ``device`` (default: the image's). Tiles meet in
    raised-cosine cross-fades, so instance norms must be frozen (``frozen_instance_norm``) for
    the result to match a whole-image run. The result goes to ``out``, by default a new tensor
    beside ``image`` as ``out_dtype`` (default: uint8 for a uint8 image, else float32). ``out``
    may be ``image`` itself: a band of rows is written only once no tile still to come reads it.
    """
    if tile % multiple or tile < 2 * overlap + multiple:
        raise ArtganError(
            f"tile size {tile} must be a multiple of {multiple} and more than twice the overlap"
        )
    dtype = out.dtype if out is not None else out_dtype or output_dtype(image)
    for top, band in _blended_bands(network, image, tile, overlap, batch, multiple,
                                    device or image.device):
        if out is None:
            shape = (1, band.shape[1], *image.shape[-2:])
            out = torch.empty(shape, dtype=dtype, device=image.device,
                              memory_format=torch.channels_last)
        # rounded in place: a temporary copy of a band of a large picture costs more than it
        out[..., top:top + band.shape[-2], :] = quantize_(band) if dtype == torch.uint8 else band
    assert out is not None
    return out


def _blended_bands(
    network: Callable[[Tensor], Tensor],
    image: Tensor,
    tile: int,
    overlap: int,
    batch: int,
    multiple: int,
    device: torch.device,
) -> Iterator[tuple[int, Tensor]]:
    """The blended output as (first row, float32 (1, C, rows, W) band on ``device``), top to
    bottom. Only the rows that tiles still to come can touch are held, in one buffer: after
    each batch of tiles, those above the next tile are finished and handed over (valid until
    the next band is asked for; the caller may overwrite them). Every pixel sums its tiles'
    weighted outputs in the same order as a whole-size canvas would, so the result is the same
    to the bit."""
    _, _, height, width = image.shape
    th, tw = tile_size(height, tile, overlap, multiple), tile_size(width, tile, overlap, multiple)
    ys, xs = tile_starts(height, th, overlap, multiple), tile_starts(width, tw, overlap, multiple)
    wy = _blend_weights(ys, th, height, device)
    wx = _blend_weights(xs, tw, width, device)
    jobs = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    top, pending = 0, None  # pending row r accumulates output row top + r
    for first in range(0, len(jobs), batch):
        group = jobs[first:first + batch]
        # each tile moved first (uint8 is a quarter of the size), then converted
        tiles = torch.cat([to_float(image[..., ys[i]:ys[i] + th, xs[j]:xs[j] + tw].to(device))
                           for i, j in group])
        tiles = tiles.contiguous(memory_format=torch.channels_last)
        result = network(tiles).float().contiguous()  # blending is faster in one layout
        rows = ys[group[-1][0]] + th - top
        if pending is None or pending.shape[-2] < rows:
            grown = result.new_zeros((1, result.shape[1], rows, width))
            if pending is not None:
                grown[..., :pending.shape[-2], :] = pending
            pending = grown
        for k, (i, j) in enumerate(group):
            weight = wy[i].view(-1, 1) * wx[j].view(1, -1)
            y = ys[i] - top
            pending[0, :, y:y + th, xs[j]:xs[j] + tw].addcmul_(result[k], weight)
        done = ys[jobs[first + batch][0]] if first + batch < len(jobs) else height
        if done > top:
            finished = done - top
            yield top, pending[..., :finished, :]
            kept = pending.shape[-2] - finished
            pending[..., :kept, :] = pending[..., finished:, :].clone()
            pending[..., kept:, :].zero_()
            top = done
