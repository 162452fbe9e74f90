"""Restoration quality on held-out paintings: artgan against OpenCV's classic inpainting.

    PYTHONPATH=.:plugins python benchmarks/quality_restore.py --model restore.safetensors \
        [--data ../shared/data/monet] [--holdout 25] [--device cpu]

The last ``--holdout`` paintings of ``--data`` (sorted by path; train with the same
``--holdout`` so they are unseen) are damaged at three levels with ``damage.synthesize``:
thin (scratches), medium (craquelure, stains and foxing) and large (holes, tears, missing
corners), one seed per painting. Each damaged picture (quantised to 8 bits, like a scan) is
repaired with the exact damage mask by artgan's inpainter and by OpenCV's Telea and
Navier-Stokes inpainting (radius 3); PSNR and SSIM are measured inside the mask against the
undamaged original. The detector is scored by pixel F1 on thin and medium damage (and on
medium damage of one kind at a time, to show which it misses) with a 2 px tolerance band:
a detected pixel counts as right if true damage lies within 2 px, a damaged pixel as found
if a detection lies within 2 px. Last, the undamaged paintings go
through automatic restoration as ``artgan restore`` runs it (detection, default dilation,
inpainting): the share of pixels it marks and the PSNR of its result to the painting say
how much a false alarm costs. Needs ``opencv-python-headless``
(a benchmark-only dependency). ``--update-card`` writes the results into the model's card.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from artgan_restore.damage import damaged_scan
from artgan_restore.detector import detect, pixel_f1
from artgan_restore.restorer import Restorer

from artgan.convert import pil_to_uint8
from artgan.data import holdout_split
from artgan.imageio import find_images, read_image
from artgan.metrics import psnr, ssim
from artgan.store import find_model, update_card

LEVELS = ("thin", "medium", "large")
# The detector's test cases: (level, kinds); medium damage is also scored kind by kind.
DETECTOR_CASES = {"thin": ("thin", None), "medium": ("medium", None),
                  "medium, craquelure alone": ("medium", ("craquelure",)),
                  "medium, stains and foxing alone": ("medium", ("stains",))}
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "monet"
TOLERANCE = 2


def held_out(folder: Path, count: int) -> list[torch.Tensor]:
    """The last ``count`` pictures of ``folder`` (sorted by path) as (3, H, W) uint8."""
    _, paths = holdout_split([path for path, _ in find_images([str(folder)])], count)
    return [pil_to_uint8(read_image(path).rgb) for path in paths]


def opencv_inpaint(cv2, damaged: torch.Tensor, mask: torch.Tensor, flag: int) -> torch.Tensor:
    pixels = np.ascontiguousarray(damaged.permute(1, 2, 0).numpy()[:, :, ::-1])
    hole = mask.numpy().astype(np.uint8) * 255
    repaired = cv2.inpaint(pixels, hole, 3, flag)[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(repaired)).permute(2, 0, 1)


def scores(restored: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> tuple[float,
                                                                                      float]:
    a, b = restored[None].float() / 255, original[None].float() / 255
    weight = mask[None, None].float()
    return psnr(a, b, weight), ssim(a, b, weight)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="restore model name or path")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--holdout", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--update-card", action="store_true",
                        help="store the results in the --model file's card")
    args = parser.parse_args()
    if args.update_card and not args.model:
        parser.error("--update-card needs --model")
    try:
        import cv2
    except ImportError:
        print("needs opencv-python-headless: pip install opencv-python-headless", file=sys.stderr)
        return 1

    restorer = Restorer.load(args.model, args.device, threshold=args.threshold)
    originals = held_out(Path(args.data), args.holdout)
    methods = {
        "artgan": lambda d, m: restorer.inpaint(d, m),
        "opencv-telea": lambda d, m: opencv_inpaint(cv2, d, m, cv2.INPAINT_TELEA),
        "opencv-ns": lambda d, m: opencv_inpaint(cv2, d, m, cv2.INPAINT_NS),
    }
    results = {(level, name): [] for level in LEVELS for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    detection = {label: [] for label in DETECTOR_CASES}
    area = {level: [] for level in LEVELS}
    for index, original in enumerate(originals):
        scans = {}  # (level, kinds) -> (damaged, mask): the detector reuses these
        for level in LEVELS:
            damaged, mask = scans[(level, None)] = damaged_scan(original, level, index)
            area[level].append(float(mask.float().mean()))
            for name, method in methods.items():
                start = time.perf_counter()
                restored = method(damaged, mask)
                seconds[name] += time.perf_counter() - start
                assert torch.equal(restored[:, ~mask], damaged[:, ~mask])
                results[(level, name)].append(scores(restored, original, mask))
        for label, (level, kinds) in DETECTOR_CASES.items():
            damaged, mask = scans.get((level, kinds)) or damaged_scan(original, level, index,
                                                                      kinds)
            found = detect(restorer.networks["detector"], damaged, args.threshold)
            detection[label].append(pixel_f1(found, mask, TOLERANCE))

    clean = [restorer.restore(original) for original in originals]
    marked = float(np.mean([float(mask.float().mean()) for _, mask in clean]))
    # One PSNR of the mean squared error: a painting left untouched has none (infinite dB).
    clean_mse = np.mean([
        float(((restored.float() - original.float()) / 255).square().mean())
        for (restored, _), original in zip(clean, originals, strict=True)])
    clean_psnr = float(10 * np.log10(1 / max(clean_mse, 1e-12)))

    count = len(originals)
    print(f"\n{count} held-out pictures from {args.data}, model {restorer.name}, "
          f"{restorer.size} px windows")
    print(f"{'damage':8} {'area':>6} {'method':14} {'PSNR (dB)':>10} {'SSIM':>7}")
    for level in LEVELS:
        share = np.mean(area[level])
        for name in methods:
            values = np.array(results[(level, name)])
            print(f"{level:8} {share:6.1%} {name:14} {values[:, 0].mean():10.2f} "
                  f"{values[:, 1].mean():7.4f}")
    quality = {
        f"{level} ({np.mean(area[level]):.1%} of the area)": {
            name: {"psnr": round(float(np.mean([r[0] for r in results[(level, name)]])), 2),
                   "ssim": round(float(np.mean([r[1] for r in results[(level, name)]])), 4)}
            for name in methods}
        for level in LEVELS}
    print("\nseconds per picture: " + ", ".join(
        f"{name} {total / (count * len(LEVELS)):.3f}" for name, total in seconds.items()))
    print(f"\ndetector, threshold {args.threshold}, {TOLERANCE} px tolerance")
    print(f"{'damage':32} {'precision':>9} {'recall':>7} {'F1':>6}")
    for label, rows in detection.items():
        values = np.array(rows)
        print(f"{label:32} {values[:, 0].mean():9.3f} {values[:, 1].mean():7.3f} "
              f"{values[:, 2].mean():6.3f}")
        quality[f"detector F1 {label} (threshold {args.threshold}, {TOLERANCE} px)"] = round(
            float(values[:, 2].mean()), 3)
    print(f"\nundamaged paintings, automatic restore: {marked:.2%} of the pixels marked, "
          f"{clean_psnr:.2f} dB to the painting afterwards")
    quality["undamaged paintings, automatic restore"] = {
        "marked": round(marked, 4), "psnr": round(clean_psnr, 2)}
    if args.update_card:
        path = find_model(args.model, "restore").path
        update_card(path, {"quality": {
            "benchmark": f"benchmarks/quality_restore.py, {count} held-out pictures of "
                         f"{Path(args.data).name}, PSNR dB / SSIM inside the exact mask",
            **quality}})
        print(f"\nresults stored in the card of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
