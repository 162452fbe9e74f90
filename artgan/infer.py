"""Run a fully convolutional image -> image network on images of any size, fast and seamlessly.

Large images are cut into overlapping tiles whose outputs are blended with raised-cosine
weights, so peak memory depends on the tile, not the image. Instance normalisation would
make every tile look different (each tile would get its own statistics), so before tiling the
per-layer instance-norm statistics are measured once on a downscaled copy of the whole image
and then frozen for all tiles; frozen statistics are a per-channel affine map, which is folded
into the preceding convolution. Tiles then agree with each other, but the statistics of a
shrunk copy are not those of the full-size picture, so a tiled result differs from a one-pass
result, the more the smaller the copy: that, not the blending, is almost all of the difference
(the README's "Style transfer" gives figures; ``tests/test_infer.py`` checks them).
``translate`` measures them at the tile size unless told otherwise, so that memory stays
bounded by the tile. Networks run in channels-last layout under inference mode, in
bfloat16 autocast where the hardware computes it natively (CUDA, CPUs with AMX or AVX512-BF16).

Pictures may stay uint8 (0..255, read as [0, 1]; a quarter of float32's size) wherever they
are: each tile, and each band of rows being shrunk, is converted to float on the network's
device on its own, and tiles are blended in float one band of tile rows at a time, each
band rounded to uint8 once finished (over the picture itself, if asked), so no float copy of
a whole large picture is ever made.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan.errors import ArtganError

Stats = list[tuple[Tensor, Tensor]]
_BAND_ROWS = 256  # rows of a picture shrunk at a time


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA, then MPS, then the CPU; unavailable devices are a user error.

    (Kept apart from the training code so that inference does not import it.)
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArtganError(f"device {name!r} asked for, but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ArtganError("device 'mps' asked for, but MPS is not available")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where it is computed natively (faster), else ``None`` (stay in float32).

    CPUs without AVX512-BF16 or AMX emulate bfloat16 convolutions, which is slower than fp32.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def prepare(network: nn.Module, device: torch.device) -> nn.Module:
    """Put ``network`` in eval mode, channels-last layout, on ``device`` (in place)."""
    return network.eval().to(device=device, memory_format=torch.channels_last)


class InferenceInstanceNorm(nn.Module):
    """Stands in for ``nn.InstanceNorm2d`` while inferring.

    Live, it normalises with the input's own statistics through ``group_norm`` (one fused
    kernel that keeps channels-last layout, unlike ``instance_norm``); with ``record`` set it
    also keeps the statistics it used; with ``frozen`` (mean, rstd) set it applies those.
    """

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias
        self.record = False
        self.recorded: tuple[Tensor, Tensor] | None = None
        self.frozen: tuple[Tensor, Tensor] | None = None

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """The frozen normalisation as ``x * scale + shift``, each of shape (C,)."""
        assert self.frozen is not None
        mean, rstd = self.frozen
        scale = rstd if self.weight is None else rstd * self.weight.float()
        shift = -mean * scale
        return scale, shift if self.bias is None else shift + self.bias.float()

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if self.frozen is not None:
            scale, shift = self.scale_shift()
            shape = (1, c, 1, 1)
            return torch.addcmul(shift.view(shape).to(x.dtype), x, scale.view(shape).to(x.dtype))
        if not self.record:
            return F.group_norm(x, c, self.weight, self.bias, self.eps)
        out, mean, rstd = torch.native_group_norm(
            x.float(), self.weight, self.bias, n, c, h * w, c, self.eps
        )
        self.recorded = (mean.view(n, c).float(), rstd.view(n, c).float())
        return out.to(x.dtype)


def _is_instance_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats


@contextmanager
def _swapped(network: nn.Module, swaps: list[tuple[nn.Module, str, nn.Module]]) -> Iterator[None]:
    """Replace ``parent.name`` by each given module, and put the originals back afterwards."""
    originals = [(parent, name, getattr(parent, name)) for parent, name, _ in swaps]
    try:
        for parent, name, module in swaps:
            setattr(parent, name, module)
        yield
    finally:
        for parent, name, module in reversed(originals):
            setattr(parent, name, module)


@contextmanager
def inference_norms(network: nn.Module) -> Iterator[list[InferenceInstanceNorm]]:
    """Swap every instance norm of ``network`` for an ``InferenceInstanceNorm`` (in forward order
    of registration) for the duration of the block."""
    swaps = [
        (parent, name, InferenceInstanceNorm(child))
        for parent in network.modules()
        for name, child in parent.named_children()
        if _is_instance_norm(child)
    ]
    with _swapped(network, swaps):
        yield [module for _, _, module in swaps]


def _unit_float(pixels: Tensor, device: torch.device) -> Tensor:
    """``pixels`` on ``device``, uint8 ones as float32 in [0, 1] (moved first: they are smaller)."""
    pixels = pixels.to(device)
    return pixels.float().div_(255.0) if pixels.dtype == torch.uint8 else pixels


def output_dtype(image: Tensor) -> torch.dtype:
    """Outputs come back in the input's kind: uint8 for uint8 pictures, else float32."""
    return torch.uint8 if image.dtype == torch.uint8 else torch.float32


def _rounded(values: Tensor, dtype: torch.dtype) -> Tensor:
    """Network output ready to be stored as ``dtype``: for uint8, rounded from [0, 1] to
    0..255 as ``tensor_to_pil`` rounds, in place (``values`` is used up), since temporary
    copies of a band of a large picture would cost more than the band."""
    if dtype == torch.uint8:
        values.nan_to_num_(nan=0.0).clamp_(0, 1).mul_(255).round_()
    return values


def resize(image: Tensor, size: tuple[int, int], device: torch.device) -> Tensor:
    """``image`` (N, C, H, W) resized to ``size`` (antialiased bilinear), as float on ``device``.

    The width is resized a band of rows at a time (rows are independent), then the height:
    the same two passes, to the bit, as one ``F.interpolate`` call, but a uint8 picture is
    never converted to float whole.
    """
    height, width = size

    def scaled(values: Tensor, to: tuple[int, int]) -> Tensor:
        return F.interpolate(values, size=to, mode="bilinear", antialias=True,
                             align_corners=False)

    bands = [scaled(_unit_float(band, device), (band.shape[-2], width))
             for band in image.split(_BAND_ROWS, dim=-2)]
    return scaled(torch.cat(bands, dim=-2), (height, width))


def _downscale(image: Tensor, size: int, multiple: int, device: torch.device) -> Tensor:
    """Shrink so the longer side is at most ``size`` (never enlarge); sides are rounded to
    ``multiple``. The result is float on ``device``."""
    h, w = image.shape[-2:]
    factor = min(1.0, size / max(h, w))
    th = max(multiple, round(h * factor / multiple) * multiple)
    tw = max(multiple, round(w * factor / multiple) * multiple)
    if (th, tw) == (h, w):
        return _unit_float(image, device)
    return resize(image, (th, tw), device)


def instance_norm_stats(
    network: nn.Module,
    image: Tensor,
    size: int = 1024,
    multiple: int = 4,
    device: torch.device | None = None,
) -> Stats:
    """Per-layer instance-norm (mean, rstd) of one image (1, C, H, W), measured on a copy whose
    longer side is at most ``size`` on ``device`` (default: the image's); the list follows
    ``inference_norms``' order."""
    small = _downscale(image, size, multiple, device or image.device)
    small = small.contiguous(memory_format=torch.channels_last)
    with inference_norms(network) as norms:
        for norm in norms:
            norm.record = True
        network(small)
        return [norm.recorded for norm in norms]  # type: ignore[misc]


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, norm: InferenceInstanceNorm) -> nn.Module:
    """A copy of ``conv`` whose weights and bias include the frozen norm that follows it."""
    scale, shift = norm.scale_shift()
    folded = copy.copy(conv)
    folded._parameters = {}
    axis = 0 if isinstance(conv, nn.Conv2d) else 1
    shape = [1] * conv.weight.dim()
    shape[axis] = -1
    weight = conv.weight.float() * scale.view(shape)
    bias = shift if conv.bias is None else conv.bias.float() * scale + shift
    folded.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
    folded.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
    return folded


def _foldable(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups == 1


@contextmanager
def frozen_instance_norm(
    network: nn.Module, stats: Stats, fold: bool = True
) -> Iterator[nn.Module]:
    """Within the block every instance norm of ``network`` uses ``stats`` instead of its input's.

    With ``fold``, a norm that directly follows a convolution inside an ``nn.Sequential`` is
    merged into that convolution's weights, which removes a full pass over the activations.
    """
    with inference_norms(network) as norms:
        if len(norms) != len(stats):
            raise ValueError(f"{len(stats)} statistics for {len(norms)} instance norms")
        for norm, (mean, rstd) in zip(norms, stats, strict=True):
            if mean.shape[0] != 1:
                raise ValueError("frozen statistics must come from a single image")
            norm.frozen = (mean[0], rstd[0])
        swaps: list[tuple[nn.Module, str, nn.Module]] = []
        if fold:
            for parent in network.modules():
                if not isinstance(parent, nn.Sequential):
                    continue
                children = list(parent.named_children())
                pairs = zip(children, children[1:], strict=False)
                for (conv_name, conv), (norm_name, norm) in pairs:
                    if _foldable(conv) and isinstance(norm, InferenceInstanceNorm):
                        swaps += [(parent, conv_name, _fold(conv, norm)),
                                  (parent, norm_name, nn.Identity())]
        with _swapped(network, swaps):
            yield network


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
    network: nn.Module,
    image: Tensor,
    tile: int = 512,
    overlap: int = 64,
    batch: int = 1,
    multiple: int = 4,
    device: torch.device | None = None,
    out_dtype: torch.dtype | None = None,
    out: Tensor | None = None,
) -> Tensor:
    """Apply ``network`` to (1, C, H, W) ``image`` tile by tile and blend the tiles seamlessly.

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
        out[..., top:top + band.shape[-2], :] = _rounded(band, dtype)
    assert out is not None
    return out


def _blended_bands(
    network: nn.Module,
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
        tiles = torch.cat([_unit_float(image[..., ys[i]:ys[i] + th, xs[j]:xs[j] + tw], device)
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


def translate(
    network: nn.Module,
    images: Tensor,
    *,
    tile: int = 1024,
    overlap: int = 64,
    batch: int = 1,
    stats_size: int | None = None,
    multiple: int = 4,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
    out_dtype: torch.dtype | None = None,
    in_place: bool = False,
) -> Tensor:
    """Run an image -> image ``network`` (already ``prepare``d on ``device``, default: the
    images') on a float or uint8 batch (N, C, H, W).

    Each image is reflect-padded to a multiple of ``multiple``. One that fits in a tile runs in
    one pass with its own instance-norm statistics; a larger one gets statistics from a copy
    shrunk to ``stats_size`` (default: the tile size, which bounds memory by the tile; larger
is closer to a one-pass result) and is then run in tiles. ``dtype`` is
    the autocast precision (``None``: float32). Returns outputs of the input size beside the
    inputs, as ``out_dtype`` (default: uint8 for uint8 images, else float32); with
    ``in_place`` they are written over the images (of that dtype), which saves a copy of them.
    """
    device = device or images.device
    out_dtype = out_dtype or output_dtype(images)
    if in_place and out_dtype != images.dtype:
        raise ValueError(f"cannot write {out_dtype} outputs over {images.dtype} images")
    amp = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    outputs = []
    with torch.inference_mode(), amp:
        for image in images.split(1):
            height, width = image.shape[-2:]
            padded = _padded(image, multiple)
            if max(padded.shape[-2:]) <= tile:
                whole = _unit_float(padded, device).contiguous(memory_format=torch.channels_last)
                with inference_norms(network):
                    result = _rounded(network(whole).float(), out_dtype)
                result = result.to(images.device, out_dtype)
            else:
                stats = instance_norm_stats(network, padded, stats_size or tile, multiple, device)
                with frozen_instance_norm(network, stats):
                    result = run_tiled(network, padded, tile, overlap, batch, multiple, device,
                                       out_dtype, padded if in_place else None)
            result = result[..., :height, :width]
            outputs.append(image.copy_(result) if in_place else result)
    if in_place or len(outputs) == 1:
        return images if in_place else outputs[0]
    return torch.cat(outputs)


def _padded(image: Tensor, multiple: int) -> Tensor:
    """``image`` reflect-padded (replicated if too small) at the bottom and right to sides
    that are multiples of ``multiple``; itself if they already are."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
