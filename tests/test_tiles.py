"""Tile geometry, and cored tiles: each pixel from one core, which saw its margin of context."""

import math

import pytest
import torch
import torch.nn.functional as F

from artgan import tiles
from artgan.convert import to_float


def test_tile_layout_covers_and_aligns():
    for length, tile, overlap in [(4096, 1024, 64), (772, 256, 64), (1000, 512, 0), (64, 128, 8)]:
        size = tiles.tile_size(length, tile, overlap, 4)
        starts = tiles.tile_starts(length, size, overlap, 4)
        assert size <= tile and starts[0] == 0 and starts[-1] + size == length
        assert all(s % 4 == 0 for s in starts)
        assert len(starts) == max(1, math.ceil((length - overlap) / (tile - overlap)))


def test_cores_cut_without_overlap_and_context_stays_inside():
    assert tiles.cores(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert tiles.cores(8, 4) == [(0, 4), (4, 8)]
    assert tiles.cores(3, 4) == [(0, 3)]
    assert tiles.context(4, 8, 3, 10) == (1, 10)
    assert tiles.context(0, 4, 3, 10) == (0, 7)


def test_centred_windows_are_pushed_back_inside():
    assert tiles.centred(40, 60, 30, 100) == (35, 65)
    assert tiles.centred(0, 10, 30, 100) == (0, 30)
    assert tiles.centred(90, 100, 30, 100) == (70, 100)
    assert tiles.centred(0, 10, 30, 20) == (0, 20)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 5x5 box blur, reflected at the border: it reads 2 px around each pixel."""
    return F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, stride=1)


@pytest.mark.parametrize("core, margin, multiple", [(32, 8, 1), (24, 4, 8), (100, 16, 4)])
def test_cored_run_equals_a_whole_run_and_covers_every_pixel_once(core, margin, multiple):
    image = torch.randint(0, 256, (3, 70, 90), dtype=torch.uint8)
    whole = _blur(to_float(image)[None])[0]
    out = torch.full_like(whole, float("nan"))
    seen = torch.zeros(image.shape[-2:], dtype=torch.int64)
    shapes = []

    def run(crop: torch.Tensor) -> torch.Tensor:
        shapes.append(crop.shape)
        assert crop.dtype == torch.float32 and crop.shape[0] == 1
        return _blur(crop)

    for (rows, cols), result in tiles.run_cored(run, image, core, margin, multiple):
        out[:, rows, cols] = result
        seen[rows, cols] += 1
    assert bool((seen == 1).all())
    assert all(h % multiple == 0 and w % multiple == 0 for *_, h, w in shapes)
    assert torch.allclose(out, whole, atol=1e-6)


def test_cored_run_replicates_pictures_too_small_to_reflect():
    image = torch.rand(3, 6, 9)
    parts = list(tiles.run_cored(lambda crop: crop, image, 4, 8))
    assert len(parts) == 2 * 3
    for (rows, cols), result in parts:
        assert torch.equal(result, image[:, rows, cols])
