"""Restoration quality on held-out photos and paintings, each kind on its own.

    PYTHONPATH=.:plugins python benchmarks/quality_restore.py [--model general] \
        [--data-root ../shared/data] [--holdout 25] [--update-card]

Pictures: the last ``--holdout`` of each folder (sorted by path; train with the same
``--holdout`` so they are unseen): ``photo`` for photos, ``monet``, ``vangogh`` and
``ukiyoe`` for paintings. For each kind it reports:

* **clean pictures**: the share of pixels automatic restore would repaint (the detector at
  the model's threshold, dilated as ``artgan restore`` dilates), mean and worst, and how
  often the safety net (``Finding.verdict``) leaves a picture alone;
* **detector**: pixel F1 (2 px tolerance) on thin damage (scratches), medium (craquelure,
  stains and foxing), large (holes, tears, paint and plaster losses) and old-photo damage
  (dust, fibres, creases, silvering);
* **inpainting with the true mask**: PSNR/SSIM inside the mask of artgan's default mode,
  of ``--remove`` on large (opaque) damage, and of OpenCV's Telea and Navier-Stokes
  inpainting (radius 3); and over large damage's bounding box, the periodic-artefact score
  (``artgan.metrics.periodic_artefacts``: a grid of dots a fill prints) of artgan's fill,
  Navier-Stokes' and the undamaged picture;
* **automatic restore**: detection, the safety net and inpainting as ``artgan restore``
  runs them, PSNR inside the true damage against that of the damaged input (a picture
  left alone gains 0), and the gain over the pictures it repainted.

* **larger scans**: ``SCALED_PICTURES`` of each kind enlarged ``SCALES`` times
  (bicubic), damage and all, as scans of the same pictures at a higher resolution: the
  detector's F1 (tolerance scaled alike), PSNR inside the true mask of the default mode
  and (in brackets) of ``--remove``, and the share marked on the clean enlargements.

Then the example photos in ``examples/photos`` (all undamaged) and their marked share.
Damage comes from ``damage.damaged_scan`` (seeded, quantised to 8 bits like a scan). Needs
``opencv-python-headless`` (a benchmark-only dependency). ``--update-card`` stores every
figure in the model's card.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from artgan_restore.damage import damaged_scan
from artgan_restore.detector import pixel_f1
from artgan_restore.restorer import Finding, Restorer

from artgan.convert import pil_to_uint8
from artgan.data import holdout_split
from artgan.imageio import find_images, read_image
from artgan.metrics import ARTEFACT_TILE, periodic_artefacts, psnr, ssim
from artgan.store import find_model, update_card

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"photos": ("photo",), "paintings": ("monet", "vangogh", "ukiyoe")}
LEVELS = ("thin", "medium", "large")
# the detector's cases: (level, kinds)
DETECTOR_CASES = {"thin": ("thin", None), "medium": ("medium", None),
                  "large": ("large", None),
                  "old photo (dust, creases, silvering)": ("medium",
                                                           ("dust", "creases", "silvering"))}
TOLERANCE = 2
# larger scans: enlargements of pictures of each kind, whose pyramid's coarsest level shows
# the damage 1x (2x, in step with the detector's 2x2 fold), 1.25x (2.5x, 5x: one level,
# two) and 1.75x (3.5x) as large as learnt
SCALES = (2.0, 2.5, 3.5, 5.0)
SCALED_PICTURES = 10


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


def fill_box(mask: torch.Tensor) -> tuple[slice, slice]:
    """The bounding box of a (H, W) mask's pixels (not empty; H and W at least
    ``ARTEFACT_TILE``), grown to ``ARTEFACT_TILE`` px within the picture: where a fill's
    texture is scored."""
    height, width = mask.shape
    ys, xs = mask.nonzero(as_tuple=True)
    top = max(0, min(int(ys.min()), height - ARTEFACT_TILE))
    left = max(0, min(int(xs.min()), width - ARTEFACT_TILE))
    return (slice(top, max(top + ARTEFACT_TILE, int(ys.max()) + 1)),
            slice(left, max(left + ARTEFACT_TILE, int(xs.max()) + 1)))


def left_alone(finding: Finding) -> bool:
    """Whether ``artgan restore`` (without ``--force``) leaves the picture as it is."""
    return finding.verdict is not None or not finding.mask.any()


def automatic(restorer: Restorer, damaged: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                   bool]:
    """What ``artgan restore`` writes for ``damaged`` (the input itself when the safety net
    leaves it alone), what ``artgan restore --force`` writes, and whether the first
    repainted."""
    finding = restorer.find(damaged)
    forced = (restorer.inpaint(damaged, finding.mask, finding.opaque) if finding.mask.any()
              else damaged)
    if left_alone(finding):
        return damaged, forced, False
    return forced, forced, True


def evaluate(restorer: Restorer, remover: Restorer, cv2, pictures: list[torch.Tensor],
             seed: int) -> dict:
    """Every figure for one kind of picture."""
    methods = {
        "artgan": restorer.inpaint,
        "opencv-telea": lambda d, m: opencv_inpaint(cv2, d, m, cv2.INPAINT_TELEA),
        "opencv-ns": lambda d, m: opencv_inpaint(cv2, d, m, cv2.INPAINT_NS),
    }
    inpainting = {(level, name): [] for level in LEVELS for name in [*methods, "remove"]}
    detection = {label: [] for label in DETECTOR_CASES}
    auto = {level: [] for level in LEVELS}
    area = {level: [] for level in LEVELS}
    marked, verdicts, repainted_clean = [], [], []
    mesh = {name: [] for name in ("original", "artgan", "opencv-ns")}
    for index, original in enumerate(pictures):
        finding = restorer.find(original)
        marked.append(finding.share)
        verdicts.append(left_alone(finding))
        repainted_clean.append(0.0 if verdicts[-1] else finding.share)
        for label, (level, kinds) in DETECTOR_CASES.items():
            damaged, mask = damaged_scan(original, level, seed + index, kinds)
            found = restorer.find(damaged).marks
            detection[label].append(pixel_f1(found, mask, TOLERANCE))
            if kinds is not None or not mask.any():
                continue
            area[level].append(float(mask.float().mean()))
            chosen = dict(methods, remove=remover.inpaint) if level == "large" else methods
            if level == "large":
                box = (slice(None), slice(None), *fill_box(mask))
                mesh["original"].append(periodic_artefacts(original[None][box]))
            for name, method in chosen.items():
                restored = method(damaged, mask)
                assert torch.equal(restored[:, ~mask], damaged[:, ~mask])
                inpainting[(level, name)].append(scores(restored, original, mask))
                if level == "large" and name in mesh:
                    mesh[name].append(periodic_artefacts(restored[None][box]))
            repaired, forced, repainted = automatic(restorer, damaged)
            auto[level].append((scores(repaired, original, mask)[0],
                                scores(damaged, original, mask)[0], not repainted,
                                scores(forced, original, mask)[0]))
    figures: dict = {
        "pictures": len(pictures),
        "clean": {"marked mean": round(float(np.mean(marked)), 5),
                  "marked worst": round(float(np.max(marked)), 5),
                  "left alone": round(float(np.mean(verdicts)), 3),
                  "repainted mean": round(float(np.mean(repainted_clean)), 5),
                  "repainted worst": round(float(np.max(repainted_clean)), 5)},
        "detector F1": {label: round(float(np.mean([r[2] for r in rows])), 3)
                        for label, rows in detection.items()},
        "detector precision": {label: round(float(np.mean([r[0] for r in rows])), 3)
                               for label, rows in detection.items()},
        "detector recall": {label: round(float(np.mean([r[1] for r in rows])), 3)
                            for label, rows in detection.items()},
        "inpainting": {},
        "automatic": {},
        # a mesh or grid of dots the fill prints (artgan.metrics.periodic_artefacts) over
        # the large damage's bounding box, against the undamaged picture's score there
        "large fills periodic artefacts": {name: round(float(np.mean(values)), 4)
                                           for name, values in mesh.items()},
    }
    for level in LEVELS:
        names = [*methods, "remove"] if level == "large" else list(methods)
        figures["inpainting"][level] = {"area": round(float(np.mean(area[level])), 4), **{
            name: {"psnr": round(float(np.mean([r[0] for r in inpainting[(level, name)]])), 2),
                   "ssim": round(float(np.mean([r[1] for r in inpainting[(level, name)]])), 4)}
            for name in names}}
        rows = np.array(auto[level])
        figures["automatic"][level] = {"psnr": round(float(rows[:, 0].mean()), 2),
                                       "damaged psnr": round(float(rows[:, 1].mean()), 2),
                                       "gain": round(float((rows[:, 0] - rows[:, 1]).mean()), 2),
                                       "gain repainted": _gain_repainted(rows),
                                       "gain forced": round(float((rows[:, 3]
                                                                   - rows[:, 1]).mean()), 2),
                                       "left alone": round(float(rows[:, 2].mean()), 3)}
    return figures


def enlarged(picture: torch.Tensor, scale: float, mask: bool = False) -> torch.Tensor:
    """A (3, H, W) uint8 picture (bicubic) or (H, W) bool mask (nearest) ``scale`` times
    larger."""
    size = (round(picture.shape[-2] * scale), round(picture.shape[-1] * scale))
    if mask:
        return F.interpolate(picture[None, None].float(), size=size, mode="nearest")[0, 0] > 0
    return F.interpolate(picture[None].float(), size=size, mode="bicubic",
                         align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)


def larger_scans(restorer: Restorer, remover: Restorer, pictures: list[torch.Tensor],
                 seed: int) -> dict:
    """At each of ``SCALES``: detector F1 per level, PSNR inside the true mask of the
    default mode and of ``--remove`` per level, and the share marked on clean pictures."""
    figures = {}
    for scale in SCALES:
        row = {}
        cleans = [enlarged(picture, scale) for picture in pictures]
        for level in LEVELS:
            f1, default, removed = [], [], []
            for index, (original, clean) in enumerate(zip(pictures, cleans, strict=True)):
                damaged, mask = damaged_scan(original, level, seed + index)
                damaged, mask = enlarged(damaged, scale), enlarged(mask, scale, mask=True)
                found = restorer.find(damaged).marks
                f1.append(pixel_f1(found, mask, round(TOLERANCE * scale))[2])
                default.append(scores(restorer.inpaint(damaged, mask), clean, mask)[0])
                removed.append(scores(remover.inpaint(damaged, mask), clean, mask)[0])
            row[f"F1 {level}"] = round(float(np.mean(f1)), 3)
            row[f"PSNR {level}"] = round(float(np.mean(default)), 2)
            row[f"PSNR {level} remove"] = round(float(np.mean(removed)), 2)
        marked = [restorer.find(clean).share for clean in cleans]
        row["clean marked mean"] = round(float(np.mean(marked)), 5)
        row["clean marked worst"] = round(float(np.max(marked)), 5)
        figures[f"{scale:g}x"] = row
    return figures


def _gain_repainted(rows: np.ndarray) -> float | None:
    """Mean PSNR gain over the pictures automatic restore repainted (None: it left all)."""
    repainted = rows[:, 2] == 0
    if not repainted.any():
        return None
    return round(float((rows[repainted, 0] - rows[repainted, 1]).mean()), 2)


def report(kind: str, figures: dict, threshold: float) -> None:
    clean = figures["clean"]
    print(f"\n== {kind}: {figures['pictures']} held-out pictures, threshold {threshold:.3f}")
    print(f"clean pictures: {clean['marked mean']:.3%} marked on average, worst "
          f"{clean['marked worst']:.3%}; the safety net leaves {clean['left alone']:.0%} "
          "of them alone")
    print(f"clean pictures repainted unasked (after the safety net): {clean['repainted mean']:.3%}"
          f" on average, worst {clean['repainted worst']:.3%}")
    print(f"{'detector, ' + str(TOLERANCE) + ' px tolerance':40} {'precision':>9} "
          f"{'recall':>7} {'F1':>6}")
    for label in DETECTOR_CASES:
        print(f"{label:40} {figures['detector precision'][label]:9.3f} "
              f"{figures['detector recall'][label]:7.3f} {figures['detector F1'][label]:6.3f}")
    print(f"{'true mask':8} {'area':>6} {'method':14} {'PSNR (dB)':>10} {'SSIM':>7}")
    for level, rows in figures["inpainting"].items():
        for name, row in rows.items():
            if name != "area":
                print(f"{level:8} {rows['area']:6.1%} {name:14} {row['psnr']:10.2f} "
                      f"{row['ssim']:7.4f}")
    fills = figures["large fills periodic artefacts"]
    print(f"periodic artefacts over large fills (the mesh a fill prints): original "
          f"{fills['original']:.3f}, artgan {fills['artgan']:.3f}, opencv-ns "
          f"{fills['opencv-ns']:.3f}")
    print(f"{'automatic':8} {'damaged':>9} {'restored':>9} {'gain':>6} {'left alone':>10} "
          f"{'gain where repainted':>20} {'gain --force':>12}   (PSNR in the damage)")
    for level, row in figures["automatic"].items():
        repainted = row["gain repainted"]
        print(f"{level:8} {row['damaged psnr']:9.2f} {row['psnr']:9.2f} {row['gain']:6.2f} "
              f"{row['left alone']:10.0%} {'-' if repainted is None else f'{repainted:.2f}':>20} "
              f"{row['gain forced']:12.2f}")


def examples(restorer: Restorer) -> dict[str, dict]:
    """Marked share and safety-net verdict on the repository's (undamaged) example photos."""
    results = {}
    for path in sorted((ROOT / "examples" / "photos").glob("*.jpg")):
        finding = restorer.find(pil_to_uint8(read_image(path).rgb))
        results[path.name] = {"marked": round(finding.share, 5),
                              "left alone": finding.verdict is not None}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="restore model name or path")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--holdout", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threshold", type=float, default=None,
                        help="detector threshold (default: the model's)")
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
    start = time.perf_counter()
    restorer = Restorer.load(args.model, args.device, threshold=args.threshold)
    remover = Restorer(restorer.networks, restorer.size, restorer.device, restorer.threshold,
                       remove=True, sure=restorer.sure)
    print(f"model {restorer.name}, {restorer.size} px windows, threshold {restorer.threshold}")
    quality: dict = {}
    for seed, (kind, folders) in enumerate(GROUPS.items()):
        pictures = [picture for folder in folders
                    for picture in held_out(Path(args.data_root) / folder, args.holdout)]
        quality[kind] = evaluate(restorer, remover, cv2, pictures, seed * 10_000)
        report(kind, quality[kind], restorer.threshold)
        scans = larger_scans(restorer, remover, pictures[::len(pictures) // SCALED_PICTURES]
                             [:SCALED_PICTURES], seed * 10_000)
        quality[kind]["larger scans"] = scans
        print(f"larger scans ({SCALED_PICTURES} pictures enlarged, damage and all): "
              + "; ".join(f"{scale}: F1 " + " / ".join(f"{row[f'F1 {level}']:.2f}"
                                                      for level in LEVELS)
                          + ", true mask PSNR " + " / ".join(
                              f"{row[f'PSNR {level}']:.2f} ({row[f'PSNR {level} remove']:.2f})"
                              for level in LEVELS)
                          + f", clean marked {row['clean marked mean']:.2%} (worst "
                          f"{row['clean marked worst']:.1%})" for scale, row in scans.items()))
    quality["example photos"] = examples(restorer)
    print("\nexample photos (undamaged): " + ", ".join(
        f"{name} {row['marked']:.2%}{' (left alone)' if row['left alone'] else ''}"
        for name, row in quality["example photos"].items()))
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.update_card:
        path = find_model(args.model, "restore").path
        update_card(path, {"quality": {
            "benchmark": f"benchmarks/quality_restore.py, last {args.holdout} of each folder "
                         f"held out, threshold {restorer.threshold}; PSNR dB / SSIM inside "
                         "the exact mask; detector pixel F1 with a 2 px tolerance",
            **quality}})
        print(f"results stored in the card of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
