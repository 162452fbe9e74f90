"""Where to run the inpainter on a large scan: windows around the damage, nowhere else.

A 6000x4000 scan with a few scratches should cost a few windows, not 24 million pixels of
network. The mask is summarised on a grid of ``cell`` px cells; damaged cells form
connected regions, and each region gets a scale from how far its pixels lie from intact
ones (its "reach"): a scratch is filled at full resolution, a hole wider than the model
handles well is filled on a downscaled copy (scale 2, 4, ...) so that it fits. The reach
counts only cells damaged all over: a dense crack network touches every cell of a wide
area, yet each of its pixels is a pixel or two from intact paint, and downscaling it would
blur every crack. For each
scale the picture is cut into square cores (``artgan.tiles.cores``, the grid the detector
runs on); only cores holding damage of that scale become windows, each run with ``margin``
model px of context on every side. Unlike the detector's tiles, a window is not padded by
reflection where it meets the picture's border but moved back inside it
(``artgan.tiles.centred``): the inpainter must read real paint, and a reflection would copy
the hole into its own context. Windows run
thin damage first, and what one window fills is context for the next. Within a scale they
run in interleaved passes (every other row and column of cores, like the squares of one
colour on a chessboard; the last row and column, whose windows are pushed back inside the
picture, in passes of their own): windows of one pass do not overlap, so they run as one
batch, which a CPU computes in 60 % of the time per window that one at a time takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from artgan.tiles import centred, cores
from artgan_restore.components import label_parts


@dataclass(frozen=True)
class Window:
    """One inpainter run: the crop ``[top:bottom, left:right]`` goes into the model at
    1/``scale`` size; only damaged pixels of this scale inside ``core`` are written."""

    top: int
    left: int
    bottom: int
    right: int
    core: tuple[int, int, int, int]  # top, left, bottom, right
    scale: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.bottom - self.top, self.right - self.left

    @property
    def area(self) -> int:
        height, width = self.shape
        return height * width

    def core_distance(self) -> Tensor:
        """(h, w) int: how many px each pixel of the crop lies outside the core (the larger
        of its row and column distances; 0 inside it)."""
        core_top, core_left, core_bottom, core_right = self.core
        rows = torch.arange(self.top, self.bottom)
        columns = torch.arange(self.left, self.right)
        dy = (core_top - rows).clamp_min(0) + (rows - (core_bottom - 1)).clamp_min(0)
        dx = (core_left - columns).clamp_min(0) + (columns - (core_right - 1)).clamp_min(0)
        return torch.maximum(dy[:, None], dx[None, :])

    def overlaps(self, other: Window) -> bool:
        return (self.top < other.bottom and other.top < self.bottom
                and self.left < other.right and other.left < self.right)


@dataclass
class Plan:
    """The windows, in running order, and the scale of each damaged cell (0: undamaged)."""

    windows: list[Window]
    cell_scale: Tensor  # (ceil(H / cell), ceil(W / cell)) int
    cell: int

    def batches(self, max_pixels: int) -> list[list[Window]]:
        """The windows in running order, cut into groups of consecutive windows of one
        scale and shape that do not overlap, each group's crops at most ``max_pixels`` in
        all (or one window). No window of a group reads what another writes, so running a
        group at once gives what running its windows one after another would."""
        groups: list[list[Window]] = []
        for window in self.windows:
            group = groups[-1] if groups else []
            if (group and group[0].scale == window.scale and group[0].shape == window.shape
                    and sum(other.area for other in group) + window.area <= max_pixels
                    and not any(window.overlaps(other) for other in group)):
                group.append(window)
            else:
                groups.append([window])
        return groups

    def scale_of(self, top: int, left: int, bottom: int, right: int) -> Tensor:
        """Per-pixel scale of the area [top:bottom, left:right], from the cell grid."""
        c = self.cell
        cells = self.cell_scale[top // c : (bottom - 1) // c + 1, left // c : (right - 1) // c + 1]
        pixels = cells.repeat_interleave(c, 0).repeat_interleave(c, 1)
        return pixels[top % c : top % c + bottom - top, left % c : left % c + right - left]


def occupancy(mask: Tensor, cell: int, full: bool = False) -> Tensor:
    """(ceil(H / cell), ceil(W / cell)) bool: which cells hold a masked pixel (with
    ``full``: which are masked all over; beyond the picture counts as masked)."""
    height, width = mask.shape
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    padded = torch.full((rows * cell, cols * cell), int(full), dtype=torch.uint8)
    padded[:height, :width] = mask
    cells = padded.view(rows, cell, cols, cell)
    return (cells.amin(dim=(1, 3)) if full else cells.amax(dim=(1, 3))).bool()


def reach_map(cells: Tensor, limit: int) -> Tensor:
    """For each damaged cell, how many erosions it survives (1 = on the region's rim), up
    to ``limit``. Beyond the picture counts as damaged: there is no context out there."""
    grid = cells.float()[None, None]
    depth = grid.clone()
    current = grid
    for _ in range(limit - 1):
        eroded = -F.max_pool2d(F.pad(-current, (1, 1, 1, 1), value=-1.0), 3, stride=1)
        if not bool(eroded.any()):
            break
        depth += eroded
        current = eroded
    return depth[0, 0].to(torch.int32)


def plan_windows(
    mask: Tensor, size: int = 256, margin: int = 32, cell: int = 8, max_reach: float = 0.2
) -> Plan:
    """Windows covering every pixel of the (H, W) bool ``mask``.

    A region whose reach (farthest damaged pixel from an intact one) exceeds
    ``max_reach * size`` model px is handled at the smallest power-of-two scale that
    brings it under. ``size - 2 * margin`` is the core side in model px.
    """
    height, width = mask.shape
    core_side = size - 2 * margin
    if core_side < cell:
        raise ValueError(f"window {size} px leaves no core with a {margin} px margin")
    cells = occupancy(mask, cell)
    if not bool(cells.any()):
        return Plan([], torch.zeros(cells.shape, dtype=torch.int32), cell)
    allowed = max_reach * size / cell  # reach in cells at scale 1
    solid = occupancy(mask, cell, full=True)
    depth = torch.maximum(reach_map(solid, limit=int(allowed * 64) + 2), cells.int())
    labels, count = label_parts(cells)
    region_depth = torch.zeros(count + 1, dtype=torch.int32)
    region_depth.scatter_reduce_(0, labels.flatten(), depth.flatten(), reduce="amax")
    needed = (region_depth.float() / allowed).clamp_min(1.0)
    region_scale = (2 ** needed.log2().ceil()).to(torch.int32)
    region_scale[0] = 0
    cell_scale = region_scale[labels]
    windows = []
    for scale in sorted(set(region_scale[1:].tolist())):
        windows += _windows_at(cell_scale == scale, scale, height, width, size, margin, cell)
    return Plan(windows, cell_scale, cell)


def _windows_at(
    cells: Tensor, scale: int, height: int, width: int, size: int, margin: int, cell: int
) -> list[Window]:
    """Windows at one scale: a grid of cores over the picture, kept where ``cells`` is set,
    in passes over every other row and column of the grid (the last row and column apart)."""
    core = (size - 2 * margin) * scale
    span = size * scale
    row_cores, column_cores = cores(height, core), cores(width, core)
    rows, columns = len(row_cores), len(column_cores)
    passes: dict[tuple[int, int], list[Window]] = {}
    for row, (top, bottom) in enumerate(row_cores):
        for column, (left, right) in enumerate(column_cores):
            if not bool(cells[top // cell : math.ceil(bottom / cell),
                              left // cell : math.ceil(right / cell)].any()):
                continue
            y0, y1 = centred(top, bottom, span, height)
            x0, x1 = centred(left, right, span, width)
            window = Window(y0, x0, y1, x1, (top, left, bottom, right), scale)
            key = (_pass_of(row, rows), _pass_of(column, columns))
            passes.setdefault(key, []).append(window)
    return [window for key in sorted(passes) for window in passes[key]]


def _pass_of(index: int, count: int) -> int:
    """The pass of a row (or column) of cores: every other one, and the last on its own:
    its window, pushed back inside the picture, can reach the window two cores before."""
    return 2 if index == count - 1 else index % 2

