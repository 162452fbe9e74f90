"""Collect the clean crops a restore model's detector wrongly marks, to train it on them.

    PYTHONPATH=.:plugins python benchmarks/mine_false_alarms.py --model general \
        --out runs/false_alarms [--data-root ../shared/data] [--holdout 25] \
        [--validate 10] [--photos 100] [--per-picture 2]

Random crops seldom land on what a detector mistakes for damage (branches against the sky,
a lattice, a glint), so a fine-tune hardly sees its own false alarms. This runs the
detector (with its second looks, as ``artgan restore`` runs it) over the clean training
pictures of each folder and writes, for each of the ``--per-picture`` strongest places it
finds doubtful (``detector.DOUBTFUL``), the picture shifted to bring that place near its
centre (mirrored at its border), at its own scale and size, so that most training crops of
half its side contain it.
``artgan train restore --hard-negatives OUT`` trains on them beside ``--data``; damage is
drawn over them like over any picture, so the detector learns to find damage around what it
must leave alone.

Pictures never mined: the last ``--holdout`` of each folder (``quality_restore.py``'s), the
``--validate`` before them (training validation and calibration), and for photos the
``--photos`` before the held-out ones (``calibrate_restore.py --photos``'s false-alarm set),
so neither the benchmark nor the calibration measures on a mined picture. Files are named
by rank, strongest first, and ``index.csv`` lists where each came from.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from artgan_restore.detector import DOUBTFUL, damage_probability
from artgan_restore.restorer import Restorer
from PIL import Image

from artgan.convert import pil_to_uint8
from artgan.data import holdout_split
from artgan.imageio import find_images, read_image

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("photo", "monet", "vangogh", "ukiyoe")
SPACING = 64  # px between two places mined from one picture


def training_pictures(folder: Path, excluded: int) -> list[Path]:
    """The pictures of ``folder`` before its last ``excluded`` (by path)."""
    kept, _ = holdout_split([path for path, _ in find_images([str(folder)])], excluded)
    return kept


def doubtful_places(probability: torch.Tensor, count: int,
                    min_pixels: int) -> list[tuple[float, int, int]]:
    """Up to ``count`` ``(strength, row, column)`` of the most doubtful places of a
    probability map, at least ``SPACING`` px apart: the 33 px windows holding the most
    probability above ``DOUBTFUL`` (with ``min_pixels`` such pixels), each placed at the
    centroid of that probability."""
    doubtful = probability * (probability > DOUBTFUL)
    strength = F.avg_pool2d(doubtful[None, None], 33, stride=1, padding=16)[0, 0] * 33 ** 2
    pixels = F.avg_pool2d((probability > DOUBTFUL).float()[None, None], 33, stride=1,
                          padding=16)[0, 0] * 33 ** 2
    strength = torch.where(pixels >= min_pixels - 0.5, strength, torch.zeros_like(strength))
    places = []
    for _ in range(count):
        best = int(strength.argmax())
        value = float(strength.flatten()[best])
        if value <= 0:
            break
        row, col = divmod(best, strength.shape[1])
        places.append((value, *_centroid(doubtful, row, col)))
        strength[max(row - SPACING, 0):row + SPACING, max(col - SPACING, 0):col + SPACING] = 0
    return places


def _centroid(weights: torch.Tensor, row: int, col: int) -> tuple[int, int]:
    """The weighted centroid of the 33 px window of ``weights`` centred at (row, col)."""
    top, left = max(row - 16, 0), max(col - 16, 0)
    window = weights[top:row + 17, left:col + 17]
    rows = torch.arange(window.shape[0], dtype=window.dtype)[:, None]
    cols = torch.arange(window.shape[1], dtype=window.dtype)[None, :]
    total = window.sum()
    return (top + round(float((window * rows).sum() / total)),
            left + round(float((window * cols).sum() / total)))


def recentred(picture: torch.Tensor, row: int, col: int) -> torch.Tensor:
    """``picture`` (3, H, W) uint8 moved so (row, col) lies within its central quarter
    (``3/8`` to ``5/8`` of each side), mirrored where it runs out: a random crop of half its
    side then holds the place at least three times in four along each side, and the
    mirrored band stays narrow (a mirror seam is no look a picture has)."""
    _, height, width = picture.shape
    top = row - min(max(row, 3 * height // 8), 5 * height // 8)
    left = col - min(max(col, 3 * width // 8), 5 * width // 8)
    padded = F.pad(picture[None].float(), (width // 2, width // 2, height // 2, height // 2),
                   mode="reflect")[0]
    top, left = top + height // 2, left + width // 2  # in the padded picture
    return padded[:, top:top + height, left:left + width].round().to(torch.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--holdout", type=int, default=25)
    parser.add_argument("--validate", type=int, default=10)
    parser.add_argument("--photos", type=int, default=100,
                        help="photos before the held-out ones that calibration measures on")
    parser.add_argument("--per-picture", type=int, default=2)
    parser.add_argument("--min-pixels", type=int, default=4,
                        help="doubtful pixels a place needs to count")
    args = parser.parse_args()
    restorer = Restorer.load(args.model, "cpu")
    detector = restorer.networks["detector"]
    found = []
    for folder in FOLDERS:
        excluded = args.holdout + max(args.validate, args.photos if folder == "photo" else 0)
        paths = training_pictures(Path(args.data_root) / folder, excluded)
        hits = 0
        for path in paths:
            picture = pil_to_uint8(read_image(path).rgb)
            probability = damage_probability(detector, picture)
            places = doubtful_places(probability, args.per_picture, args.min_pixels)
            hits += bool(places)
            found += [(strength, path, row, col, picture) for strength, row, col in places]
        print(f"{folder}: {hits} of {len(paths)} pictures with doubtful places", flush=True)
    found.sort(key=lambda item: -item[0])  # strongest first; ties keep their order
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "index.csv", "w", newline="") as index:
        rows = csv.writer(index)
        rows.writerow(["file", "source", "row", "column", "strength"])
        for rank, (strength, path, row, col, picture) in enumerate(found):
            name = f"{rank:05d}_{path.parent.name}_{path.stem}.png"
            moved = recentred(picture, row, col)
            Image.fromarray(moved.permute(1, 2, 0).numpy()).save(args.out / name)
            rows.writerow([name, f"{path.parent.name}/{path.name}", row, col,
                           round(strength, 2)])
    print(f"{len(found)} places written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
