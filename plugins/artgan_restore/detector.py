"""The damage detector: a small U-Net that marks scratches, cracks, losses and stains.

Detection runs over every pixel of a scan, so the cost per pixel must be low: the picture
is first folded 2x2 into channels (pixel unshuffle, lossless, so a 1 px scratch is still
seen) and the whole U-Net runs at half resolution, its logits unfolded back at the end.
Telling a scratch from a painted white line needs context, so the encoder halves the
resolution ``depth`` more times; the decoder reduces channels before upsampling (cheaper)
and adds each level's features back. Batch norm, not instance norm: every tile of a scan
must be judged alike.

With ``opacity`` the detector has a second output: for each damaged pixel, whether the
damage hides the picture entirely (a paint or plaster loss, a hole, dirt) rather than
tinting or half covering it (a stain, foxing, silvering). The inpainter reads what shows
under translucent damage and must not read an opaque loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan.convert import to_float
from artgan.infer import autocast_dtype
from artgan.tiles import core_context, cores, run_cored


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, padding_mode="reflect", bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class DamageDetector(nn.Module):
    """U-Net returning damage logits (N, 1, H, W) for pictures (N, 3, H, W) in [0, 1], and
    with ``opacity`` the opacity logits as a second channel; H and W must be multiples of
    ``multiple``."""

    def __init__(self, width: int = 12, depth: int = 4, opacity: bool = False):
        super().__init__()
        self.outputs = 2 if opacity else 1
        self.multiple = 2 ** (depth + 1)
        widths = [width * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(nn.PixelUnshuffle(2), _conv(12, width), _conv(width, width))
        self.down = nn.ModuleList(
            nn.Sequential(_conv(c, c * 2, stride=2), _conv(c * 2, c * 2)) for c in widths[:-1]
        )
        self.lift = nn.ModuleList(_conv(c * 2, c) for c in widths[:-1])
        self.refine = nn.ModuleList(_conv(c, c) for c in widths[:-1])
        self.head = nn.Sequential(nn.Conv2d(width, 4 * self.outputs, 1), nn.PixelShuffle(2))

    def forward(self, image: Tensor) -> Tensor:
        return self.head(self.features(image))

    def features(self, image: Tensor) -> Tensor:
        """The decoder's last features at half resolution, before the 1x1 head."""
        x = self.stem(image * 2 - 1)
        skips = []
        for down in self.down:
            skips.append(x)
            x = down(x)
        for level in reversed(range(len(self.down))):
            x = F.interpolate(self.lift[level](x), scale_factor=2.0, mode="nearest")
            x = self.refine[level](x + skips[level])
        return x


SURE = 0.9  # a detection at least this probable is one the detector is sure of
# pixels at least this probable are damage the detector is certain of: a detection made
# almost only of them is trusted over a wider part of a picture (``restorer.Finding``)
CERTAIN = 0.9
DOUBTFUL = 0.3  # pixels at least this probable get a second look (``second_look``)
# px: the shorter side of the pictures the detector learnt from (``--load-size``); a larger
# picture is also looked at shrunk towards it (``pyramid_logits``)
PYRAMID_SIDE = 256
_UNSEEN = -1e4  # the logits of a pyramid level's part that no tile ran
# px side of the cells a second look runs on (``look_regions``): smaller cells cut a look to
# its doubt more tightly, and each region costs its margins on top. On ``bench_restore.py``'s
# scan 128 px looks at 5.2 MP (margins included) where 256 px looked at 6.4 and 64 px at 5.3;
# on the validation pictures (and them enlarged 2.5x) 17 of 19 million pixels are marked
# otherwise than with 256 px.
LOOK_CELL = 128
LOOK_PAD = 16  # px around a region's doubtful pixels that its second look covers too
# a second look's views, each (axes flipped, px shifted; ``look_view``): the picture turned
# half round, and the picture moved one pixel up and left (``second_look``)
LOOKS = (((-2, -1), 0), ((), 1))


class Maps(NamedTuple):
    """What the detector found in a picture, each (H, W) bool: ``damage`` above the
    threshold, ``sure`` above the ``sure`` probability, ``certain`` above ``CERTAIN``,
    ``suspect`` above the ``suspect`` probability where that is below the threshold (else
    the same as ``damage``), and
    ``hides``: were this pixel damaged, the damage would hide the picture (meaningful on
    damage only; all False for a detector without opacity)."""

    damage: Tensor
    sure: Tensor
    hides: Tensor
    certain: Tensor
    suspect: Tensor


def detect(detector: DamageDetector, image: Tensor, threshold: float = 0.5,
           tile: int = 1024, margin: int = 48) -> Tensor:
    """Damage mask (H, W) bool of a (3, H, W) picture (uint8, or float in [0, 1])."""
    return detect_maps(detector, image, threshold, tile, margin).damage


def _limit(probability: float) -> float:
    return float(torch.logit(torch.tensor(probability, dtype=torch.float64)))


def detect_maps(
    detector: DamageDetector,
    image: Tensor,
    threshold: float = 0.5,
    tile: int = 1024,
    margin: int = 48,
    sure: float = SURE,
    within: Tensor | None = None,
    looks: bool = True,
    suspect: float = 1.0,
) -> Maps:
    """The detector's ``Maps`` of a (3, H, W) picture (uint8, or float in [0, 1]), made
    tile by tile at every scale of its pyramid (``pyramid_logits``); ``sure`` and
    ``suspect`` are the probabilities of the sure and suspect maps. With ``within`` ((H, W)
    bool), only the tiles needed for its pixels are run, and only its pixels are as without
    it (the others are not meaningful). ``looks``: whether doubtful pixels get a second
    look (``second_look``)."""
    _, height, width = image.shape
    maps = Maps(*(torch.zeros(height, width, dtype=torch.bool) for _ in Maps._fields))
    limit, sure = _limit(threshold), _limit(max(threshold, sure))
    certain, suspect = _limit(CERTAIN), _limit(min(threshold, suspect))
    for (rows, cols), core in pyramid_logits(detector, image, tile, margin, within, looks):
        maps.damage[rows, cols] = core[0] > limit
        maps.suspect[rows, cols] = core[0] > suspect
        maps.sure[rows, cols] = core[0] > sure
        maps.certain[rows, cols] = core[0] > certain
        if core.shape[0] > 1:
            maps.hides[rows, cols] = core[1] > 0
    return maps


def damage_probability(detector: DamageDetector, image: Tensor, tile: int = 1024,
                       margin: int = 48) -> Tensor:
    """The (H, W) float damage probability of a picture: for sweeping thresholds."""
    probability = torch.zeros(image.shape[-2:])
    for (rows, cols), core in pyramid_logits(detector, image, tile, margin):
        probability[rows, cols] = torch.sigmoid(core[0])
    return probability


def pyramid_factors(height: int, width: int) -> list[int]:
    """The factors (2, 4, ...) by which a picture is shrunk for the coarser levels of its
    pyramid: while its shorter side stays at least ``PYRAMID_SIDE``."""
    factors, factor = [], 2
    while min(height, width) // factor >= PYRAMID_SIDE:
        factors.append(factor)
        factor *= 2
    return factors


def shrink(image: Tensor, factor: int, band: int = 256) -> Tensor:
    """A (3, H, W) picture (uint8, or float in [0, 1]) box-averaged by ``factor``, as float
    (3, ceil(H / factor), ceil(W / factor)); the sides are first replicated to multiples of
    the factor. Done in bands of rows, so no float copy of the whole picture is made."""
    height, width = image.shape[-2:]
    rows = []
    for top in range(0, height, band * factor):
        part = to_float(image[:, top:top + band * factor])[None]
        padding = (0, -width % factor, 0, -part.shape[-2] % factor)
        if any(padding):
            part = F.pad(part, padding, mode="replicate")
        rows.append(F.avg_pool2d(part, factor)[0])
    return torch.cat(rows, dim=1)


def pyramid_logits(detector: DamageDetector, image: Tensor, tile: int = 1024,
                   margin: int = 48, within: Tensor | None = None, looks: bool = True,
                   ) -> Iterator[tuple[tuple[slice, slice], Tensor]]:
    """``tiled_logits`` of a picture, where each pixel takes the logits of whichever level
    of its pyramid is surest of damage there (``pyramid_factors``).

    The detector learnt damage as it looks on pictures of about ``PYRAMID_SIDE`` px, where a
    scratch is 1-3 px wide; on a larger scan the same scratch is wider, and the detector at
    the scan's own scale misses it (``quality_restore.py``'s larger scans, held-out pictures
    enlarged 2.5x with their damage: F1 0.02-0.10; 3.5x and 5x: nothing). Shrunk by 2, 4,
    ... (down to that size), the scan shows its damage at the scale learnt; a hairline that
    only the full scale shows is still found there. The coarser levels cost a third more
    at most (and their second looks), and pictures under twice ``PYRAMID_SIDE`` have none.

    With ``within`` ((H, W) bool), every level runs only the tiles that its pixels (and the
    one coarse pixel around them that enlarging reads) need: the logits of its pixels are
    as without it, the rest of the yielded tiles' are not meaningful.
    """
    height, width = image.shape[-2:]
    if within is not None and tuple(within.shape) != (height, width):
        raise ValueError(f"within is {tuple(within.shape)}, the picture {(height, width)}")
    levels, covered, small = [], within, image
    for factor in pyramid_factors(height, width):
        small = shrink(small, 2)  # each level from the one before: a quarter of the reading
        needed = None
        if covered is not None:
            covered = _halved(covered)  # where the pixels of within shrink to
            needed = dilate(covered, 1)  # and their neighbours, which enlarging reads
        # a part no tile ran never wins the comparison below
        logits = torch.full((getattr(detector, "outputs", 1), *small.shape[-2:]), _UNSEEN)
        for where, core in tiled_logits(detector, small, tile, margin, needed, looks):
            logits[:, where[0], where[1]] = core
        levels.append((factor, logits))
    for where, core in tiled_logits(detector, image, tile, margin, within, looks):
        for factor, logits in levels:
            coarse = _enlarged(logits, where, factor)
            core = torch.where(coarse[:1] > core[:1], coarse, core)
        yield where, core


def _halved(mask: Tensor) -> Tensor:
    """A (H, W) bool mask shrunk by 2 as ``shrink`` shrinks a picture (the sides rounded
    up): a pixel is set where any of the four it covers is. Bytes only, no float copy."""
    height, width = mask.shape
    padded = F.pad(mask, (0, width % 2, 0, height % 2))
    return padded.view(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(dim=3).any(dim=1)


def _enlarged(logits: Tensor, where: tuple[slice, slice], factor: int) -> Tensor:
    """The part ``where`` (full-scale rows, cols) of a level's (C, h, w) ``logits``,
    enlarged by ``factor`` (bilinear, as the whole map would be: one coarse pixel of context
    is read on each side)."""
    (top, bottom), (left, right) = ((s.start, s.stop) for s in where)
    y0, x0 = max(0, top // factor - 1), max(0, left // factor - 1)
    y1 = min(logits.shape[1], -(-bottom // factor) + 1)
    x1 = min(logits.shape[2], -(-right // factor) + 1)
    part = F.interpolate(logits[None, :, y0:y1, x0:x1], scale_factor=factor, mode="bilinear",
                         align_corners=False)[0]
    return part[:, top - y0 * factor:bottom - y0 * factor, left - x0 * factor:right - x0 * factor]


@torch.inference_mode()
def tiled_logits(detector: DamageDetector, image: Tensor, tile: int = 1024,
                 margin: int = 48, within: Tensor | None = None, looks: bool = True,
                 ) -> Iterator[tuple[tuple[slice, slice], Tensor]]:
    """``((rows, cols), logits)`` of each tile of a (3, H, W) picture, logits (C, h, w)
    float on the CPU.

    The picture is cut into ``tile`` px cores, each run with ``margin`` px of context
    (reflected at the picture's border) so no core sees a tile edge (``artgan.tiles.run_cored``:
    cores, not blended tiles, so each pixel is judged once); only one tile is in float at a
    time, so memory does not grow with the scan. Where a tile holds doubtful pixels, the
    detector takes a second look (``second_look``), unless ``looks`` is false. With
    ``within`` ((H, W) bool), only the tiles holding one of its pixels are run.
    """
    device = next(detector.parameters()).device
    dtype = autocast_dtype(device)

    def logits(crop: Tensor) -> Tensor:
        with torch.autocast(device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            return detector(crop)

    for where, core in run_cored(logits, image, tile, margin, detector.multiple, device,
                                 within):
        core = core.float().cpu()
        if looks:
            second_look(logits, image, where, core, margin, detector.multiple, device)
        yield where, core


def second_look(logits: Callable[[Tensor], Tensor], image: Tensor, where: tuple[slice, slice],
                core: Tensor, margin: int, multiple: int, device: torch.device) -> None:
    """Average into ``core`` (the logits of the tile ``where`` of ``image``, in place) the
    detector's logits on the picture turned half round and on the picture moved one pixel
    up and left (``LOOKS``), in each ``LOOK_CELL`` px cell of the tile that holds
    a pixel more probable than ``DOUBTFUL``.

    A false alarm on a clean picture (a glint, a plank, sky between branches) is seldom
    seen alike in every view, damage is. The turned view changes which way the picture's
    structures run; the shifted one changes how the detector's 2x2 fold and strides group
    its pixels, which is what makes a picture enlarged exactly 2x (each 2x2 block in step
    with the fold) look damaged all over. On the 40 validation pictures of
    ``benchmarks/calibrate_restore.py`` at the shipped thresholds, against the view mirrored
    left-right, upside down and both (what the second look was before): thin / medium /
    large F1 0.735 / 0.736 / 0.997 -> 0.761 / 0.747 / 0.997, clean photos marked 0.065 % ->
    0 %, paintings 0.012 % -> 0.014 %, 13 held-out photos enlarged 2x (bicubic) 17.4 % ->
    8.2 %; and a third less looking. But the shifted view is less sure of holes' rims:
    98.4 % of the holes' pixels are found against 99.5 %, 0.7 dB less gained inside them.
    Shifting one axis only, or mirroring one axis besides the shift, lost holes (large F1
    0.83-0.93).

    Only doubtful cells are looked at again, so a scan costs more the more damage it shows,
    not three times as much. Neighbouring doubtful cells are looked at as one rectangle, cut
    down to where their doubt lies (``look_regions``): on ``bench_restore.py``'s scan half
    the pixels of looking cell by cell, finding the same. A region's views run as one batch
    (fewer, larger calls: 20 % less time per look with OpenVINO).
    """
    top, left = where[0].start, where[1].start
    for y0, y1, x0, x1 in look_regions(core[0] > _limit(DOUBTFUL), LOOK_CELL, multiple):
        region = (slice(top + y0, top + y1), slice(left + x0, left + x1))
        crop = core_context(image, region, margin, multiple, device)
        seen = logits(torch.cat([look_view(crop, *look) for look in LOOKS])).float().cpu()
        looks = core[:, y0:y1, x0:x1].clone()
        for view, look in zip(seen, LOOKS, strict=True):
            back = look_back(view[None], *look)[0]
            looks += back[:, margin:margin + y1 - y0, margin:margin + x1 - x0]
        core[:, y0:y1, x0:x1] = looks / (len(LOOKS) + 1)


def look_view(images: Tensor, flip: tuple[int, ...], shift: int) -> Tensor:
    """(N, C, H, W) ``images`` as a second look sees them: flipped along ``flip``, then
    shifted ``shift`` px up and left (the last rows and columns replicated), so that the
    view's pixel (y, x) is the picture's (y + shift, x + shift)."""
    if flip:
        images = images.flip(flip)
    if shift:
        images = F.pad(images[..., shift:, shift:], (0, shift, 0, shift), mode="replicate")
    return images


def look_back(logits: Tensor, flip: tuple[int, ...], shift: int) -> Tensor:
    """(N, C, H, W) logits of a ``look_view`` put back where the picture's pixels are."""
    if shift:
        logits = F.pad(logits[..., :-shift, :-shift], (shift, 0, shift, 0), mode="replicate")
    return logits.flip(flip) if flip else logits


def look_regions(doubtful: Tensor, cell: int, align: int) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, left, right)`` rectangles to look at again in a (h, w) bool map of
    doubtful pixels. The ``cell`` px cells holding one are joined: a rectangle grows right
    along its row of such cells, then down while the whole span below is such cells too (no
    cell is looked at twice, none without a doubtful pixel); then it is cut to the bounding
    box of its doubtful pixels and ``LOOK_PAD`` px around them, within its cells, its top
    and left moved back to multiples of ``align`` (of a multiple of ``align`` px, the
    ``cell``). The detector's answers depend on where its 2x2 fold and strides fall: a
    look not aligned with the first one's grid sees the picture differently (on the
    validation pictures, holes found 0.997 -> 0.935 F1, false alarms and cracks lower)."""
    rows, cols = cores(doubtful.shape[0], cell), cores(doubtful.shape[1], cell)
    grid = [[bool(doubtful[y0:y1, x0:x1].any()) for x0, x1 in cols] for y0, y1 in rows]
    regions = []
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not grid[i][j]:
                continue
            right = j
            while right + 1 < len(cols) and grid[i][right + 1]:
                right += 1
            bottom = i
            while bottom + 1 < len(rows) and all(grid[bottom + 1][j:right + 1]):
                bottom += 1
            for row in grid[i:bottom + 1]:
                row[j:right + 1] = [False] * (right + 1 - j)
            top, low, left, far = rows[i][0], rows[bottom][1], cols[j][0], cols[right][1]
            ys, xs = doubtful[top:low, left:far].nonzero(as_tuple=True)
            regions.append((top + max(0, (int(ys.min()) - LOOK_PAD) // align * align),
                            top + min(low - top, int(ys.max()) + 1 + LOOK_PAD),
                            left + max(0, (int(xs.min()) - LOOK_PAD) // align * align),
                            left + min(far - left, int(xs.max()) + 1 + LOOK_PAD)))
    return regions


def keep_connected(mask: Tensor, seeds: Tensor, cell: int = 8) -> Tensor:
    """The parts of a (H, W) bool ``mask`` connected to one of its ``seeds`` (hysteresis
    thresholding: a detection counts where the detector is sure of some of it, and then
    reaches as far as its lower threshold does).

    Connection is followed on a grid of ``cell`` px cells (a cell is in the mask if any of
    its pixels is), so a large scan costs a few hundred small max-pools; two detections
    less than a cell apart count as one.
    """
    height, width = mask.shape
    if not bool(seeds.any()):
        return torch.zeros_like(mask)
    coarse = F.max_pool2d(mask[None, None].float(), cell, ceil_mode=True)[0, 0] > 0
    grown = (F.max_pool2d((seeds & mask)[None, None].float(), cell, ceil_mode=True)[0, 0] > 0)
    while True:
        before = int(grown.sum())
        for _ in range(16):
            grown = (F.max_pool2d(grown[None, None].float(), 3, 1, 1)[0, 0] > 0) & coarse
        if int(grown.sum()) == before:
            break
    keep = grown.repeat_interleave(cell, 0).repeat_interleave(cell, 1)[:height, :width]
    return mask & keep


def dilate(mask: Tensor, pixels: int) -> Tensor:
    """Grow a (H, W) bool mask by ``pixels`` in every direction (a square neighbourhood).

    Separable (rows, then columns), each axis grown by OR-ing the mask with itself shifted
    both ways by 1, 2, 4, ... px until the steps add up to ``pixels``: a few passes over
    bytes, about 20x faster on a large scan than max-pooling it as floats, and no float
    copy of it is made.
    """
    out = mask.clone()
    for dim in (1, 0):
        grown, step = 0, 1
        while grown < pixels:
            step = min(step, pixels - grown)
            length = out.shape[dim] - step
            if length > 0:
                before = out.clone()
                out.narrow(dim, 0, length).logical_or_(before.narrow(dim, step, length))
                out.narrow(dim, step, length).logical_or_(before.narrow(dim, 0, length))
            grown += step
            step *= 2
    return out


def pixel_f1(found: Tensor, truth: Tensor, tolerance: int = 2) -> tuple[float, float, float]:
    """Precision, recall and F1 of a detected (H, W) bool mask against the true one, each
    pixel allowed ``tolerance`` px off: a detection is right if true damage lies that close,
    a damaged pixel is found if a detection does (a mask one pixel wider than the crack is
    still a good mask). Nothing found where there is nothing to find scores 1."""
    if not found.any() and not truth.any():
        return 1.0, 1.0, 1.0
    precision = float((found & dilate(truth, tolerance)).sum()) / max(1, int(found.sum()))
    recall = float((truth & dilate(found, tolerance)).sum()) / max(1, int(truth.sum()))
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return precision, recall, f1
