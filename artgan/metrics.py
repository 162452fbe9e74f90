"""Offline quality metrics: how close generated images are to real ones, without the network.

SWD needs no pretrained weights, so it is the default; FID and KID need Inception-v3
weights that artgan never downloads, so they only run from a local file the user gives.
PSNR and SSIM compare restored images with their originals, file by file.
``periodic_artefacts`` scores one set alone: how much of its fine detail is a regular mesh
(``periodic_lattice``: a coarser grid).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kornia
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from artgan import plugins
from artgan.convert import pil_to_tensor
from artgan.data import resize_shorter
from artgan.errors import ArtganError, UnknownNameError
from artgan.imageio import ImageError, find_images, read_image

METRICS = ("swd", "psnr", "ssim", "fid", "kid")

_SWD_MIN_SIZE = 16  # the coarsest pyramid level, as in the paper
_BLUR = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # binomial kernel of cv2.pyrDown
_INCEPTION_SIZE = 299


# --- sliced Wasserstein distance ----------------------------------------------------------


def swd(
    real: Tensor,
    fake: Tensor,
    *,
    levels: int | None = None,
    patch: int = 7,
    patches_per_image: int = 128,
    projections: int = 512,
    seed: int = 0,
) -> dict[str, float]:
    """Sliced Wasserstein distance between Laplacian-pyramid patches (Karras et al. 2018).

    Returns ``swd_<px>`` per pyramid level (finest level = image size, coarsest >= 16 px
    unless ``levels`` is given) and their mean ``swd``, all times 1e3 as in the paper.
    Descriptors are normalised with statistics pooled over both sets, not per set as in
    the paper: per-set normalisation subtracts each set's mean colour and so cannot see a
    colour cast. Patch positions are shared by both sets, so ``swd(a, b) == swd(b, a)``.
    """
    generator = torch.Generator().manual_seed(seed)
    results: dict[str, float] = {}
    for size, desc_real, desc_fake in _descriptor_sets(
        real, fake, levels, patch, patches_per_image, generator
    ):
        mean, std = _pooled_stats(desc_real, desc_fake)
        directions = _random_directions(desc_real[0].numel(), projections, generator)
        distance = _sliced_distance(
            (desc_real - mean) / std, (desc_fake - mean) / std, directions.to(real.device)
        )
        results[f"swd_{size}"] = distance * 1e3
    results = dict(sorted(results.items(), key=lambda item: int(item[0][4:])))
    results["swd"] = sum(results.values()) / len(results)
    return results


def _descriptor_sets(
    real: Tensor,
    fake: Tensor,
    levels: int | None,
    patch: int,
    patches_per_image: int,
    generator: torch.Generator,
) -> list[tuple[int, Tensor, Tensor]]:
    """``(level size, real patches, fake patches)`` per level, patches as (M, 3, k, k)."""
    for name, images in (("real", real), ("fake", fake)):
        if images.dim() != 4 or images.shape[1] != 3 or len(images) == 0:
            raise ArtganError(f"swd: {name} images must be a non-empty (N, 3, H, W) tensor")
    if real.shape[2:] != fake.shape[2:]:
        raise ArtganError(
            f"swd: real images are {tuple(real.shape[2:])} but fake are {tuple(fake.shape[2:])}"
        )
    shapes = _level_shapes(real.shape[2], real.shape[3], levels, patch)
    count = max(len(real), len(fake))
    positions = [
        (
            torch.randint(0, h - patch + 1, (count, patches_per_image), generator=generator),
            torch.randint(0, w - patch + 1, (count, patches_per_image), generator=generator),
        )
        for h, w in shapes
    ]
    desc_real = _pyramid_patches(real, positions, patch)
    desc_fake = _pyramid_patches(fake, positions, patch)
    return [(min(s), a, b) for s, a, b in zip(shapes, desc_real, desc_fake, strict=True)]


def _level_shapes(height: int, width: int, levels: int | None, patch: int) -> list[tuple[int, int]]:
    """(h, w) of each pyramid level, finest first; each level halves (rounding up)."""
    shapes = [(height, width)]
    while True:
        h, w = shapes[-1]
        smaller = ((h + 1) // 2, (w + 1) // 2)
        if levels is None and min(smaller) < _SWD_MIN_SIZE:
            break
        if levels is not None and len(shapes) >= levels:
            break
        shapes.append(smaller)
    if min(shapes[-1]) < max(patch, 3):
        raise ArtganError(
            f"swd: {height}x{width} images are too small for {len(shapes)} pyramid levels "
            f"with {patch}x{patch} patches"
        )
    return shapes


def _pyramid_patches(
    images: Tensor, positions: list[tuple[Tensor, Tensor]], patch: int, batch: int = 64
) -> list[Tensor]:
    """Patches at the given positions of each Laplacian level, in batches to bound memory."""
    per_level: list[list[Tensor]] = [[] for _ in positions]
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch].float()
        pyramid = _laplacian_pyramid(chunk, len(positions))
        for level, (layer, (ys, xs)) in enumerate(zip(pyramid, positions, strict=True)):
            stop = start + len(chunk)
            rows, cols = ys[start:stop].to(layer.device), xs[start:stop].to(layer.device)
            per_level[level].append(_patches(layer, rows, cols, patch))
    return [torch.cat(parts) for parts in per_level]


def _laplacian_pyramid(images: Tensor, levels: int) -> list[Tensor]:
    """Band-pass levels, finest first, then the low-pass residual (cv2.pyrDown/pyrUp style)."""
    pyramid = []
    current = images
    for _ in range(levels - 1):
        smaller = _blur(current)[:, :, ::2, ::2]
        upsampled = torch.zeros_like(current)
        upsampled[:, :, ::2, ::2] = smaller
        pyramid.append(current - _blur(upsampled, gain=4.0))
        current = smaller
    pyramid.append(current)
    return pyramid


def _blur(images: Tensor, gain: float = 1.0) -> Tensor:
    channels = images.shape[1]
    kernel = (torch.outer(_BLUR, _BLUR) * gain).to(images)
    kernel = kernel.expand(channels, 1, 5, 5)
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="reflect"), kernel, groups=channels)


def _patches(layer: Tensor, rows: Tensor, cols: Tensor, patch: int) -> Tensor:
    """(B*P, C, k, k) patches whose top-left corners are ``rows``/``cols`` (each (B, P))."""
    batch, channels = layer.shape[:2]
    offsets = torch.arange(patch, device=layer.device)
    b = torch.arange(batch, device=layer.device)[:, None, None, None, None]
    c = torch.arange(channels, device=layer.device)[None, None, :, None, None]
    y = (rows[:, :, None] + offsets)[:, :, None, :, None]
    x = (cols[:, :, None] + offsets)[:, :, None, None, :]
    return layer[b, c, y, x].reshape(-1, channels, patch, patch)


def _pooled_stats(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of two (M, C, k, k) descriptor sets taken together."""
    count = (a.numel() + b.numel()) / a.shape[1]
    total = a.double().sum((0, 2, 3)) + b.double().sum((0, 2, 3))
    squares = a.double().square().sum((0, 2, 3)) + b.double().square().sum((0, 2, 3))
    mean = total / count
    std = (squares / count - mean.square()).clamp(min=0).sqrt().clamp(min=1e-8)
    return mean.float()[:, None, None], std.float()[:, None, None]


def _random_directions(dim: int, count: int, generator: torch.Generator) -> Tensor:
    directions = torch.randn(dim, count, generator=generator)
    return directions / directions.norm(dim=0, keepdim=True)


def _sliced_distance(a: Tensor, b: Tensor, directions: Tensor, chunk: int = 128) -> float:
    """Mean over directions of the 1-D Wasserstein-1 distance between the projections."""
    a, b = a.flatten(1), b.flatten(1)
    total = 0.0
    for part in directions.split(chunk, dim=1):
        # One row per direction: sorting along contiguous rows is faster on the CPU.
        projected_a = (part.T @ a.T).sort(dim=1).values
        projected_b = (part.T @ b.T).sort(dim=1).values
        count = min(projected_a.shape[1], projected_b.shape[1])
        difference = _quantiles(projected_a, count) - _quantiles(projected_b, count)
        total += float(difference.abs().mean(1).sum())
    return total / directions.shape[1]


def _quantiles(rows: Tensor, count: int) -> Tensor:
    """Resample sorted rows to ``count`` evenly spaced quantiles (linear interpolation)."""
    size = rows.shape[1]
    if size == count:
        return rows
    position = (torch.arange(count, device=rows.device) + 0.5) * (size / count) - 0.5
    position = position.clamp(0, size - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=size - 1)
    weight = (position - low).to(rows)
    return rows[:, low] * (1 - weight) + rows[:, high] * weight


# --- PSNR and SSIM ------------------------------------------------------------------------


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> float:
    """Mean per-image PSNR in dB of (N, 3, H, W) images in [0, 1]; ``inf`` when identical.

    With a (N, 1, H, W) mask only the masked pixels count (a float mask weights them);
    images whose mask is empty are left out.
    """
    weight = _weights(a, b, mask)
    error = (a.float() - b.float()).square().mean(1, keepdim=True)
    totals = weight.sum((1, 2, 3))
    keep = totals > 0
    mse = (error * weight).sum((1, 2, 3))[keep] / totals[keep]
    return float((10 * torch.log10(1 / mse)).mean())


def ssim(a: Tensor, b: Tensor, mask: Tensor | None = None, window: int = 11) -> float:
    """Mean SSIM of (N, 3, H, W) images in [0, 1]; with a mask, the SSIM map's masked mean."""
    weight = _weights(a, b, mask)
    similarity = kornia.metrics.ssim(a.float(), b.float(), window, max_val=1.0)
    similarity = similarity.mean(1, keepdim=True)
    totals = weight.sum((1, 2, 3))
    keep = totals > 0
    return float(((similarity * weight).sum((1, 2, 3))[keep] / totals[keep]).mean())


def _weights(a: Tensor, b: Tensor, mask: Tensor | None) -> Tensor:
    if a.shape != b.shape or a.dim() != 4:
        raise ArtganError(f"cannot compare images of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if mask is None:
        return torch.ones_like(a[:, :1], dtype=torch.float32)
    weight = mask.float().expand(a.shape[0], 1, *a.shape[2:])
    if not bool((weight > 0).any()):
        raise ArtganError("the mask selects no pixels")
    return weight


# --- periodic artefacts -------------------------------------------------------------------

ARTEFACT_TILE = 64  # px: the tiles periodic_artefacts scores, so the smallest image it takes
MESH_PERIODS = (0.0, 8.0)  # px: the periods periodic_artefacts scores, shortest excluded
# a lattice of 8 to 16 px (periodic_lattice): twice the periods need tiles twice as large
# for as many spectral bins between them
LATTICE_TILE = 128
LATTICE_PERIODS = (8.0, 16.0)
_LINES = ((0, 1), (1, 0), (1, 1), (1, -1))  # rows, columns and both diagonals of the spectrum
_LINE_OFFSETS = (-5, -4, -3, -2, 2, 3, 4, 5)  # bins either side; +-1 hold a peak's own lobe


def periodic_artefacts(
    images: Tensor, *, tile: int = ARTEFACT_TILE, factor: float = 6.0,
    periods: tuple[float, float] = MESH_PERIODS,
) -> float:
    """Mean share of fine-detail power in narrow spectral peaks: the mesh, checkerboard or
    grid of dots that upsampling layers print on GAN outputs. Clean photos and paintings
    score about 0.05, the same photos with a +-2/255 checkerboard added several times that.

    ``images``: (N, 3, H, W), float in [0, 1] or uint8, H and W >= ``tile``. Per image:

    1. Rec. 601 luminance and the two colour differences (YCbCr), each scored alone, and
       per image the largest of the three: a mesh may show in brightness or in colour
       only (a generator penalised on brightness alone learnt to print it in colour).
    2. ``tile`` px tiles at half-tile steps, each minus its mean and times a 2-D Hann
       window, then the power spectrum. Fixed-size tiles make the score independent of the
       image size; the window keeps the tile's borders from leaking into every bin. Tiles
       are scored one by one, not averaged first, so a mesh on a flat sky counts although
       a busy region beside it hides it, as it does for the eye.
    3. The high band, at least 1/8 cycle per pixel (``periods``: longer than 0 px, at most
       8): upsampling by 2, 4 or 8 leaves its peaks there, while a picture's own structure
       dominates lower down. ``periodic_lattice`` scores the next octave.
    4. Each bin's background: the median of the bins 2 to 5 away along the spectrum's row,
       column and both diagonals, the largest of these four. A median ignores a peak among
       the neighbours; the largest line keeps the ridges that straight edges and oriented
       textures (grass, hatching, brush strokes) draw through the spectrum from counting as
       peaks, since a ridge is high along its own line.
    5. Peaks: bins above ``factor`` times their background that are the largest of their
       3x3 bins, widened by one bin to take in the Hann window's main lobe. A peak counts
       where its top lies, so a pattern just past the band (9 px) does not count by its
       side lobe inside it, and each pattern counts in one band only: this one or
       ``periodic_lattice``'s. Their excess over the background, as a share of the
       tile's high-band power, is the tile's score. A noise-like texture's bins scatter
       exponentially about their mean, so a few pass by chance: about 0.04 for white or
       1/f noise alike, whatever its strength. That floor, shared by photos and paintings,
       keeps ratios to a clean set meaningful.
    6. The mean over the tiles, leaving out tiles with no high-band power (flat or clipped:
       nothing to see), then over the images.
    """
    if images.dim() != 4 or images.shape[1] != 3 or len(images) == 0:
        raise ArtganError("periodic_artefacts: images must be a non-empty (N, 3, H, W) tensor")
    if not 0 <= periods[0] < periods[1]:
        raise ArtganError(f"periodic_artefacts: periods must be (shortest, longest) with "
                          f"0 <= shortest < longest, got {periods}")
    height, width = images.shape[2:]
    if min(height, width) < tile:
        raise ArtganError(
            f"periodic_artefacts: {width}x{height} images are smaller than its {tile} px tiles"
        )
    # A few images at a time: the background holds 8 copies of every tile's spectrum.
    with torch.no_grad():
        shares = torch.cat([periodic_artefact_shares(chunk, tile=tile, factor=factor,
                                                     periods=periods)
                            for chunk in images.split(16)])
    return float(shares.mean())


def swd_times_mesh(reference: Tensor, images: Tensor, clean_mesh: float | None, *,
                   projections: int = 512, tile: int = ARTEFACT_TILE) -> float:
    """``swd`` of ``images`` to ``reference``, times how many times ``clean_mesh`` (the
    ``periodic_artefacts`` score of clean pictures) ``images`` score, when that is above 1;
    ``clean_mesh`` None: SWD alone. Training's ``--validate-by swd+artefacts``: a step as
    clean as its inputs is judged by its SWD alone, a meshy one loses in proportion."""
    score = swd(reference, images, projections=projections)["swd"]
    if clean_mesh is not None:
        mesh = periodic_artefacts(images, tile=tile)
        score *= max(1.0, mesh / max(clean_mesh, 1e-6))
    return score


def evenly_spaced(paths: Iterable[str | os.PathLike], at_most: int) -> list:
    """At most ``at_most`` of ``paths`` (sorted), evenly spaced: a reference set for a
    score computed often, smaller than the whole folder."""
    ordered = sorted(paths)
    return ordered[::max(1, -(-len(ordered) // at_most))]


def periodic_lattice(images: Tensor, *, factor: float = 6.0) -> float:
    """``periodic_artefacts`` one octave lower: periods of 8 to 16 px, in 128 px tiles.

    A generator penalised on the fine mesh (``--artefact-weight``) can move its pattern to
    a coarser lattice of dashes about 16 px apart, plain to the eye and below the mesh
    score's band. At 128 px: Monet's 500 paintings 0.067, 300 photos 0.058;
    ``generate/monet``'s samples 0.17, and a generator trained with that penalty 0.18,
    where its mesh score is 0.047 (``generate/monet``'s 0.20). Less sensitive than the mesh
    score, since a picture's own detail is stronger an octave lower: a grid of bumps of
    +-8/255, 16 px apart, raises those photos' score 1.8x (+-4/255 raises smooth
    synthetic pictures' 5x, ``tests/test_metrics.py``). The band's long end is soft by
    about a bin: stripes 17 px apart still count, 18 px apart do not. H and W must be at
    least 128."""
    return periodic_artefacts(images, tile=LATTICE_TILE, factor=factor, periods=LATTICE_PERIODS)


def periodic_artefact_shares(
    images: Tensor, *, tile: int = ARTEFACT_TILE, factor: float = 6.0,
    periods: tuple[float, float] = MESH_PERIODS,
) -> Tensor:
    """Per image, the mean over its tiles of the high-band power share in peaks, in its
    most affected YCbCr channel (N,): the score of ``periodic_artefacts`` before its mean.
    Any value range will do (the tiles lose their mean and the share is a ratio of powers);
    H and W must be at least ``tile``. Differentiable (``artgan.losses.periodic_artefact_loss``).
    """
    pixels = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    channels = kornia.color.rgb_to_ycbcr(pixels).flatten(0, 1)  # (3N, H, W): Rec. 601
    step = tile // 2
    tiles = channels.unfold(1, tile, step).unfold(2, tile, step).flatten(1, 2)  # (3N, T, k, k)
    tiles = tiles - tiles.mean((-2, -1), keepdim=True)
    window = torch.hann_window(tile, device=pixels.device)
    power = torch.fft.fft2(tiles * torch.outer(window, window)).abs().square()
    background = _spectral_background(power)
    frequency = torch.fft.fftfreq(tile, device=pixels.device)
    radius = torch.hypot(frequency[:, None], frequency[None, :])
    shortest, longest = periods
    high = radius >= 1 / longest
    if shortest > 0:
        high &= radius < 1 / shortest
    seeds = (power > factor * background) & high & _local_maxima(power.detach())
    peaks = _widen(seeds) & high
    excess = ((power - background).clamp(min=0) * peaks).sum((-2, -1))
    total = (power * high).sum((-2, -1))
    seen = total > 0
    shares = torch.where(seen, excess / total.clamp(min=torch.finfo(total.dtype).tiny), 0.0)
    per_channel = shares.sum(1) / seen.sum(1).clamp(min=1)
    return per_channel.view(-1, 3).amax(1)


def _spectral_background(power: Tensor) -> Tensor:
    """Per bin of (..., k, k) spectra, the largest of its four line medians (see above).

    Lines wrap round the edges because the DFT is periodic: the bins past the Nyquist
    frequency are the negative frequencies next to it.
    """
    background = None
    for dy, dx in _LINES:
        median = _median([power.roll((k * dy, k * dx), (-2, -1)) for k in _LINE_OFFSETS])
        background = median if background is None else torch.maximum(background, median)
    return background


def _median(values: list[Tensor]) -> Tensor:
    """Elementwise median of an even number of tensors: the mean of the middle two.

    Found by an odd-even transposition sort of whole tensors, a few dozen elementwise
    min/max, three times faster on the CPU than sorting millions of groups of eight. Under
    autograd (``losses.periodic_artefact_loss``) that sort would cost twenty times the
    forward pass (each min/max keeps its masks), so it runs without gradient, and the
    gradient goes half to each of the middle two values, shared among values equal to one.
    The values must be finite (power spectra are).
    """
    with torch.no_grad():
        ordered = list(values)
        for start in range(len(ordered)):
            for i in range(start % 2, len(ordered) - 1, 2):
                low, high = ordered[i], ordered[i + 1]
                ordered[i], ordered[i + 1] = torch.minimum(low, high), torch.maximum(low, high)
        low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
        median = (low + high) / 2
    if not (torch.is_grad_enabled() and any(value.requires_grad for value in values)):
        return median
    with torch.no_grad():
        at_low = [(value == low).to(value.dtype) for value in values]
        at_high = [(value == high).to(value.dtype) for value in values]
        low_count, high_count = sum(at_low), sum(at_high)
        weights = [(a / low_count + b / high_count) / 2
                   for a, b in zip(at_low, at_high, strict=True)]
    # zero in value, so the median is exact; the weights in gradient
    return median + sum(weight * (value - value.detach())
                        for weight, value in zip(weights, values, strict=True))


def _local_maxima(power: Tensor) -> Tensor:
    """The bins of (..., k, k) spectra at least as large as their 8 neighbours, wrapping."""
    shape = power.shape
    flat = F.pad(power.reshape(-1, 1, *shape[-2:]), (1, 1, 1, 1), mode="circular")
    return power >= F.max_pool2d(flat, 3, stride=1).reshape(shape)


def _widen(mask: Tensor) -> Tensor:
    """``mask`` (..., k, k) grown by one bin in each direction, wrapping round."""
    shape = mask.shape
    flat = F.pad(mask.reshape(-1, 1, *shape[-2:]).float(), (1, 1, 1, 1), mode="circular")
    return F.max_pool2d(flat, 3, stride=1).reshape(shape) > 0


# --- loading image sets -------------------------------------------------------------------


def load_image_set(
    folder: str | os.PathLike, size: int | None = None, limit: int | None = None
) -> Tensor:
    """Images under ``folder`` as one (N, 3, H, W) tensor in [0, 1].

    With ``size`` each image is scaled so its shorter side is ``size`` and centre-cropped
    square; without it all images must already share one size. Unreadable files are
    skipped with a warning.
    """
    images, _names = _read_set(folder, size, limit)
    return _stack(images, folder)


def _read_set(
    folder: str | os.PathLike, size: int | None, limit: int | None = None
) -> tuple[list[Tensor], list[Path]]:
    """Decoded images under ``folder`` and their paths relative to it."""
    root = Path(folder)
    if not root.is_dir():
        raise ArtganError(f"{root}: no such folder")
    images, names = _read_files(find_images([str(root)]), size, limit)
    if not images:
        raise ArtganError(f"{root}: no readable images found")
    return images, names


def load_squares(paths: Iterable[str | os.PathLike], size: int) -> Tensor:
    """The pictures at ``paths`` as one (N, 3, size, size) tensor in [0, 1]: each scaled so
    its shorter side is ``size`` and centre-cropped. Unreadable files are skipped with a
    warning; none readable is an error."""
    images, _names = _read_files(((Path(p), None) for p in paths), size)
    if not images:
        raise ArtganError("none of the given pictures could be read")
    return torch.stack(images)


def _read_files(
    files: Iterable[tuple[Path, Any]], size: int | None, limit: int | None = None
) -> tuple[list[Tensor], list[Any]]:
    """Decode ``(path, name)`` pairs, skipping (with a warning) what cannot be read."""
    if size is not None and size < 1:
        raise ArtganError(f"the image size must be at least 1, got {size}")
    images, names = [], []
    for path, relative in files:
        if limit is not None and len(images) >= limit:
            break
        try:
            picture = read_image(path).rgb
        except ImageError as error:
            plugins.warn(f"skipping {error}")
            continue
        if size is not None:
            picture = _center_square(resize_shorter(picture, size), size)
        images.append(pil_to_tensor(picture))
        names.append(relative)
    return images, names


def _center_square(picture: Image.Image, size: int) -> Image.Image:
    width, height = picture.size
    left, top = (width - size) // 2, (height - size) // 2
    return picture.crop((left, top, left + size, top + size))


def _stack(images: list[Tensor], folder: str | os.PathLike) -> Tensor:
    shapes = sorted({tuple(image.shape[1:]) for image in images})
    if len(shapes) > 1:
        (h1, w1), (h2, w2) = shapes[:2]
        raise ArtganError(
            f"{folder}: images have different sizes ({w1}x{h1} and {w2}x{h2}); "
            "give a size to resize them"
        )
    return torch.stack(images)


# --- evaluation of folders ----------------------------------------------------------------


def evaluate(
    real_dir: str | os.PathLike,
    fake_dir: str | os.PathLike,
    metrics: Iterable[str] = ("swd",),
    size: int | None = 128,
    inception_weights: str | os.PathLike | None = None,
) -> dict[str, float]:
    """Compare a folder of generated (or restored) images with a folder of real ones.

    ``swd``, ``fid`` and ``kid`` compare the two sets as distributions; ``psnr`` and
    ``ssim`` compare files pairwise, matched by relative path ignoring the extension.
    Every image is first scaled (shorter side) and centre-cropped to ``size``.
    """
    wanted = list(dict.fromkeys(metrics))
    for name in wanted:
        if name not in METRICS:
            raise UnknownNameError("metric", name, METRICS)
    inception = _inception(inception_weights) if {"fid", "kid"} & set(wanted) else None

    real, real_names = _read_set(real_dir, size)
    fake, fake_names = _read_set(fake_dir, size)
    device = _device()
    results: dict[str, float] = {}
    if "swd" in wanted:
        results.update(swd(_stack(real, real_dir).to(device), _stack(fake, fake_dir).to(device)))
    if {"psnr", "ssim"} & set(wanted):
        pairs = _pairs(real, real_names, fake, fake_names, real_dir, fake_dir)
        for name, measure in (("psnr", psnr), ("ssim", ssim)):
            if name in wanted:
                values = [measure(r[None].to(device), f[None].to(device)) for r, f in pairs]
                results[name] = sum(values) / len(values)
    if inception is not None:
        inception.to(device)
        real_features = _features(inception, _stack(real, real_dir), device)
        fake_features = _features(inception, _stack(fake, fake_dir), device)
        if "fid" in wanted:
            results["fid"] = frechet_distance(real_features, fake_features)
        if "kid" in wanted:
            results["kid"] = kernel_distance(real_features, fake_features)
    return results


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pairs(
    real: list[Tensor],
    real_names: list[Path],
    fake: list[Tensor],
    fake_names: list[Path],
    real_dir: str | os.PathLike,
    fake_dir: str | os.PathLike,
) -> list[tuple[Tensor, Tensor]]:
    """Real and fake images with the same relative path (outputs are often saved as PNG)."""
    by_name = {
        name.with_suffix("").as_posix(): image for name, image in zip(real_names, real, strict=True)
    }
    pairs = []
    for name, image in zip(fake_names, fake, strict=True):
        original = by_name.get(name.with_suffix("").as_posix())
        if original is None:
            continue
        if original.shape != image.shape:
            raise ArtganError(
                f"{Path(fake_dir) / name}: size {image.shape[2]}x{image.shape[1]} differs "
                f"from its original's {original.shape[2]}x{original.shape[1]}"
            )
        pairs.append((original, image))
    if not pairs:
        raise ArtganError(
            f"no image in {fake_dir} has the same relative path as one in {real_dir}; "
            "psnr and ssim compare files pairwise"
        )
    return pairs


# --- FID and KID --------------------------------------------------------------------------


def _inception(weights: str | os.PathLike | None) -> nn.Module:
    """torchvision's Inception-v3 from a local safetensors file, returning pool3 features."""
    if weights is None:
        raise ArtganError(
            "fid and kid need Inception-v3 weights, which artgan never downloads; pass a "
            "local .safetensors file of torchvision's inception_v3 weights "
            "(inception_weights=PATH, or --inception-weights PATH)"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from torchvision.models import inception_v3

    path = Path(weights)
    if path.suffix != ".safetensors" or not path.is_file():
        raise ArtganError(f"{path}: Inception weights must be an existing .safetensors file")
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as error:
        raise ArtganError(f"{path}: cannot read Inception weights ({error})") from None
    # The auxiliary classifier only helps training; checkpoints usually include it.
    state = {key: value for key, value in state.items() if not key.startswith("AuxLogits.")}
    model = inception_v3(weights=None, aux_logits=False, init_weights=False)
    expected = set(model.state_dict())
    odd = [f"missing {k}" for k in sorted(expected - set(state))[:2]]
    odd += [f"unexpected {k}" for k in sorted(set(state) - expected)[:2]]
    if odd:
        raise ArtganError(f"{path}: not torchvision inception_v3 weights ({', '.join(odd)})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise ArtganError(f"{path}: not torchvision inception_v3 weights ({first})") from None
    model.fc = nn.Identity()
    return model.eval()


@torch.no_grad()
def _features(model: nn.Module, images: Tensor, device: torch.device, batch: int = 32) -> Tensor:
    """2048-d pool3 features of [0, 1] images, in float64 on ``device``."""
    features = []
    for chunk in images.split(batch):
        chunk = F.interpolate(
            chunk.to(device),
            size=(_INCEPTION_SIZE, _INCEPTION_SIZE),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        features.append(model(chunk * 2 - 1).double())
    return torch.cat(features)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """FID between two (N, D) feature sets: the Fréchet distance of fitted Gaussians.

    With S = X^T X for centred, scaled features X, tr(sqrt(S_a S_b)) equals the sum of
    the singular values of X_a X_b^T (N_a x N_b), and also the trace of sqrt(R S_b R)
    with R = sqrt(S_a) (D x D); the cheaper form is used. Both need only symmetric or
    singular-value decompositions, which are stable, unlike a general matrix square root.
    """
    if len(a) < 2 or len(b) < 2:
        raise ArtganError("fid needs at least 2 images in each set")
    x_a = (a.double() - a.double().mean(0)) / math.sqrt(len(a) - 1)
    x_b = (b.double() - b.double().mean(0)) / math.sqrt(len(b) - 1)
    dim = a.shape[1]
    if len(a) * len(b) * min(len(a), len(b)) < dim**3:
        cross = torch.linalg.svdvals(x_a @ x_b.T).sum()
    else:
        values, vectors = torch.linalg.eigh(x_a.T @ x_a)
        root_a = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
        middle = root_a @ (x_b.T @ x_b) @ root_a
        cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    mean_gap = (a.double().mean(0) - b.double().mean(0)).square().sum()
    return float(mean_gap + x_a.square().sum() + x_b.square().sum() - 2 * cross)


def kernel_distance(
    a: Tensor, b: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> float:
    """KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets."""
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ArtganError("kid needs at least 2 images in each set")
    a, b = a.double(), b.double()
    dim = a.shape[1]
    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=generator)[:size]]
        y = b[torch.randperm(len(b), generator=generator)[:size]]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        within = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (size * (size - 1))
        total += float(within - 2 * k_xy.mean())
    return total / subsets
