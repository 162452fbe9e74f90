"""Connected parts of a damage mask (``artgan_restore.components``)."""

from __future__ import annotations

from collections import deque

import torch
from artgan_restore.components import label_parts, run_labels, runs, whole_losses


def flood_labels(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) int: each 8-connected part of ``mask`` numbered from 1 by a plain flood
    fill, 0 outside: what ``run_labels`` must agree with."""
    height, width = mask.shape
    labels = torch.zeros(height, width, dtype=torch.int64)
    count = 0
    for y, x in mask.nonzero().tolist():
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        queue = deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            for ny in range(max(0, cy - 1), min(height, cy + 2)):
                for nx in range(max(0, cx - 1), min(width, cx + 2)):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        queue.append((ny, nx))
    return labels


def test_runs_are_the_rows_stretches_of_set_pixels():
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    rows, starts, ends = runs(mask)
    assert rows.tolist() == [0, 0, 2] and starts.tolist() == [0, 3, 0]
    assert ends.tolist() == [2, 4, 4]


def test_parts_are_those_of_a_flood_fill_corners_joining():
    generator = torch.Generator().manual_seed(0)
    for density in (0.2, 0.45, 0.6, 0.9):  # scattered specks to one part with holes
        mask = torch.rand(37, 41, generator=generator) < density
        rows, starts, ends = runs(mask)
        labels = run_labels(rows, starts, ends)
        expected = flood_labels(mask)
        assert int(labels.max()) + 1 == int(expected.max())
        # one to one: a run's part and the flood fill's part of its first pixel
        pairs = set(zip(labels.tolist(), expected[rows, starts].tolist(), strict=True))
        assert len(pairs) == int(expected.max())
    diagonal = torch.eye(5, dtype=torch.bool)
    assert run_labels(*runs(diagonal)).tolist() == [0] * 5  # corners touch: one part


def test_a_part_opaque_on_enough_of_it_is_opaque_whole_and_no_other():
    mask = torch.zeros(30, 30, dtype=torch.bool)
    mask[2:12, 2:12] = mask[2:12, 20:30] = mask[20:28, 5:25] = True
    opaque = torch.zeros_like(mask)
    opaque[2:4, 2:12] = True  # 20 % of the first part
    opaque[2, 20] = True  # 1 % of the second
    out = whole_losses(opaque, mask, share=0.1)
    assert out[2:12, 2:12].all() and not out[20:28].any()
    assert out[2:12, 20:30].sum() == 1
    assert not (out & ~mask).any()
    assert torch.equal(whole_losses(torch.zeros_like(mask), mask), torch.zeros_like(mask))
    assert torch.equal(whole_losses(opaque, torch.zeros_like(mask)), opaque)  # no parts


def test_the_share_is_a_lower_bound_and_corners_join_parts():
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[0:5, 0:2] = True  # 10 px
    mask[5, 2] = True  # touches it at a corner only: one part of 11 px
    opaque = torch.zeros_like(mask)
    opaque[5, 2] = True
    assert whole_losses(opaque, mask, share=1 / 11)[mask].all()  # exactly the share
    assert whole_losses(opaque, mask, share=1.5 / 11).sum() == 1


def test_labelled_parts_match_a_flood_fill_pixel_for_pixel():
    generator = torch.Generator().manual_seed(1)
    for density in (0.3, 0.55):
        mask = torch.rand(29, 33, generator=generator) < density
        labels, count = label_parts(mask)
        expected = flood_labels(mask)
        assert count == int(expected.max())
        assert torch.equal(labels > 0, mask)
        pairs = set(zip(labels[mask].tolist(), expected[mask].tolist(), strict=True))
        assert len(pairs) == count  # one to one
    assert label_parts(torch.zeros(4, 5, dtype=torch.bool))[1] == 0
