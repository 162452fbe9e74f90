"""Connected parts of a damage mask, and the opacity each part takes as a whole.

The detector's opacity output says pixel by pixel whether damage hides the picture. It
learnt losses at one scale: on a scan larger than that it sees a loss's rim as opaque and
not its middle, a flat patch that could be paint (validation pictures enlarged 1.5x and
3.5x with their damage, the true mask given: 24-52 % of the losses' pixels called opaque,
against all of them at the learnt scale), and the inpainter, reading that middle as
picture, fills the losses 0.15-0.22 dB worse than ``--remove``. A loss hides all of
itself, so each connected part of the mask that the detector finds opaque on a tenth of
its pixels is taken as opaque whole (``whole_losses``): then within 0.06 dB of
``--remove``; scratches and stains, opaque on a few pixels at most, stay as found (the
same pictures at their own size: the same PSNR).

Parts are joined on the mask's runs (the stretches of damaged pixels along each row), so
beside a few byte-wise passes over the scan the work grows with the damage's outline:
0.06 s for ``bench_restore.py``'s 4000x3000 mask, 2 s for one of random noise (about
0.5 GB).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOSS_SHARE = 0.1  # a part of the mask opaque on this share of its pixels is opaque whole


def runs(mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(rows, starts, ends)`` of the runs of a (H, W) bool mask, in reading order: the
    stretches ``mask[row, start:end]`` of set pixels, each as long as it goes."""
    edges = F.pad(mask.to(torch.int8), (1, 1)).diff(dim=1)
    rows, starts = (edges == 1).nonzero(as_tuple=True)
    ends = (edges == -1).nonzero(as_tuple=True)[1]
    return rows, starts, ends


def run_labels(rows: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """The 8-connected part (0, 1, ...) each run of ``runs`` belongs to.

    Two runs touch when they lie on neighbouring rows and overlap by a pixel or touch at a
    corner; a row's runs are ordered and disjoint, so those a run touches on the row above
    are consecutive and found by binary search. Each run starts as its own part; each part
    then points at the smallest part it touches and the pointers are followed to their
    end, until no two touching runs are in different parts (a few rounds)."""
    count = rows.numel()
    if count == 0:
        return rows.clone()
    line = int(ends.max()) + 1  # > every column and end: (row, column) as one ordered key
    start_key, end_key = rows * line + starts, rows * line + ends
    row_above = (rows - 1) * line
    first = torch.searchsorted(end_key, row_above + starts)  # first run ending at or after
    last = torch.searchsorted(start_key, row_above + ends, right=True) - 1  # last starting by
    touching = (last - first + 1).clamp(min=0)
    lower = torch.repeat_interleave(torch.arange(count), touching)
    upper = torch.repeat_interleave(first, touching) + (
        torch.arange(lower.numel()) - torch.repeat_interleave(touching.cumsum(0) - touching,
                                                              touching))
    parent = torch.arange(count)
    while not bool((parent[upper] == parent[lower]).all()):
        low = torch.minimum(parent[upper], parent[lower])
        parent.scatter_reduce_(0, parent[upper], low, "amin")
        parent.scatter_reduce_(0, parent[lower], low, "amin")
        while not torch.equal(parent[parent], parent):
            parent = parent[parent]
    return torch.unique(parent, return_inverse=True)[1]


def label_parts(mask: Tensor) -> tuple[Tensor, int]:
    """8-connected parts of a (H, W) bool mask: (H, W) int64 labels (0 outside the mask,
    1..count) and the count."""
    rows, starts, ends = runs(mask)
    labels = torch.zeros(mask.shape[0], mask.shape[1] + 1, dtype=torch.int64)
    if rows.numel() == 0:
        return labels[:, :-1], 0
    part = run_labels(rows, starts, ends) + 1
    # each run's label at its start, taken off again at its end, summed along the row
    labels.index_put_((rows, starts), part, accumulate=True)
    labels.index_put_((rows, ends), -part, accumulate=True)
    return labels.cumsum(dim=1)[:, :-1], int(part.max())


def whole_losses(opaque: Tensor, mask: Tensor, share: float = LOSS_SHARE) -> Tensor:
    """``opaque`` ((H, W) bool, within ``mask``) with every connected part of ``mask`` that
    is opaque on at least ``share`` of its pixels made opaque all over."""
    rows, starts, ends = runs(mask)
    if rows.numel() == 0:
        return opaque.clone()
    labels = run_labels(rows, starts, ends)
    parts = int(labels.max()) + 1
    size = torch.zeros(parts, dtype=torch.int64).index_add_(0, labels, ends - starts)
    # which run each opaque pixel lies in: the last one starting at or before it
    line = mask.shape[1] + 1
    hidden_rows, hidden_cols = (opaque & mask).nonzero(as_tuple=True)
    run = torch.searchsorted(rows * line + starts, hidden_rows * line + hidden_cols,
                             right=True) - 1
    found = torch.bincount(labels[run], minlength=parts)
    whole = (found >= share * size)[labels]
    # mark the chosen runs: +1 at each start, -1 at each end, summed along the rows
    steps = torch.zeros(mask.shape[0], mask.shape[1] + 1, dtype=torch.int8)
    steps.index_put_((rows[whole], starts[whole]), torch.ones(1, dtype=torch.int8),
                     accumulate=True)
    steps.index_put_((rows[whole], ends[whole]), torch.full((1,), -1, dtype=torch.int8),
                     accumulate=True)
    return opaque | (steps.cumsum(dim=1, dtype=torch.int8)[:, :-1] > 0)
