"""A smooth classical fill of holes: the inpainter's starting point.

A network that has to rebuild a 1 px scratch through a 1/8-resolution bottleneck returns it
blurred at the bottleneck's scale, worse than any classical method (OpenCV's Telea fills
thin scratches well because their neighbours are right there). So the inpainter does not
paint from nothing: it receives this fill and predicts a correction to it, which starts at
zero. Large holes still need the network's texture and structure; thin ones mostly need
this fill.

The fill is push-pull (Gortler et al. 1996, "The Lumigraph"): known pixels are averaged down
an image pyramid with their weights, so every level knows a little more of the hole, then
pulled back up, each level keeping what it knows and taking the rest from the level below.
A few Jacobi sweeps at full resolution then smooth the block pattern of the coarse levels
into a membrane-like surface. Everything is a pooling or an interpolation: cheap on any
device, and fine for a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from artgan.nn.blocks import exporting

SMOOTHING_SWEEPS = 8
EXPORT_DEPTH = 14
"""Pyramid levels of an exported fill, whatever the size: down to 1x1 for sides up to
2**14 px; levels past 1x1 only divide its value and weight by 4, exactly, so they change
nothing."""


@torch.no_grad()
def smooth_fill(image: Tensor, mask: Tensor, sweeps: int = SMOOTHING_SWEEPS) -> Tensor:
    """``image`` (N, C, H, W) with the pixels where ``mask`` (N, 1, H, W) is 1 replaced by a
    smooth interpolation of the known ones; known pixels are returned unchanged. An image
    with no known pixel at all is filled with mid-grey."""
    image = image.float()
    known = 1 - mask.float()
    values, weights = [image * known], [known]
    # Always down to 1x1: the pull below keeps a level that knows every pixel as it is, so
    # the levels under it change nothing, and the depth depends on the size alone, not on
    # the data (which an exporter cannot trace; exporting, it is fixed, see EXPORT_DEPTH).
    depth = (EXPORT_DEPTH if exporting()
             else (max(image.shape[-2:]) - 1).bit_length())
    for _ in range(depth):
        value, weight = values[-1], weights[-1]
        pads = (0, value.shape[-1] % 2, 0, value.shape[-2] % 2)  # zero weight: unknown
        values.append(F.avg_pool2d(F.pad(value, pads), 2))
        weights.append(F.avg_pool2d(F.pad(weight, pads), 2))

    coarsest = weights[-1].clamp_min(1e-8)
    filled = torch.where(weights[-1] > 0, values[-1] / coarsest, torch.full_like(values[-1], 0.5))
    for value, weight in zip(reversed(values[:-1]), reversed(weights[:-1]), strict=True):
        below = F.interpolate(filled, scale_factor=2.0, mode="bilinear", align_corners=False)
        below = below[..., : value.shape[-2], : value.shape[-1]]
        own = value / weight.clamp_min(1e-8)
        # a picture that knows every pixel of this level keeps them as they are: the levels
        # below exist only for other pictures of the batch, whose holes reach deeper
        complete = (weight > 0).flatten(1).all(dim=1).view(-1, 1, 1, 1)
        filled = torch.where(complete, own, weight * own + (1 - weight) * below)

    hole = mask.float() > 0.5
    for _ in range(sweeps):
        filled = torch.where(hole, _box3(filled), image)
    return torch.where(hole, filled, image)


def _box3(x: Tensor) -> Tensor:
    """3x3 mean with replicated borders, as sums of shifted slices (several times faster
    on the CPU than ``avg_pool2d`` with stride 1)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    rows = padded[..., :, :-2] + padded[..., :, 1:-1] + padded[..., :, 2:]
    return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) / 9
