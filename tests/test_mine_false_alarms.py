"""``benchmarks/mine_false_alarms.py``: where a detector doubts, and pictures recentred there."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from mine_false_alarms import SPACING, doubtful_places, recentred  # noqa: E402


def test_the_strongest_doubtful_places_come_first_and_apart():
    probability = torch.zeros(256, 256)
    probability[40:44, 40:60] = 0.9  # strong
    probability[200:202, 100:110] = 0.4  # weak
    probability[45:47, 60:70] = 0.9  # beside the strong one: suppressed
    probability[150, 150] = 0.95  # one pixel: too few
    places = doubtful_places(probability, 5, min_pixels=4)
    assert len(places) == 2
    (strong, row, col), (weak, row2, col2) = places
    assert strong > weak and 30 <= row <= 50 and 40 <= col <= 70
    assert (row2, col2) != (row, col) and abs(row2 - row) >= SPACING
    assert 190 <= row2 <= 210


def test_nothing_doubtful_gives_no_place():
    assert doubtful_places(torch.full((64, 64), 0.2), 3, min_pixels=1) == []


def test_recentred_picture_keeps_its_size_and_brings_the_place_to_the_middle():
    picture = torch.zeros(3, 64, 64, dtype=torch.uint8)
    picture[:, 5, 60] = 255
    moved = recentred(picture, 5, 60)
    assert moved.shape == picture.shape and moved.dtype == torch.uint8
    assert moved[0, 24, 40] == 255  # the nearest point of the central quarter
    picture[:, 30, 33] = 255  # already central: unmoved
    assert torch.equal(recentred(picture, 30, 33), picture)
