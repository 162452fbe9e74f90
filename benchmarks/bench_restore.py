"""End-to-end restore of a large scan on the CPU: time and peak memory.

    PYTHONPATH=.:plugins python benchmarks/bench_restore.py [--model general] \
        [--width 4000 --height 3000] [--threads 2] [--backends torch openvino]

A painting (the first of ../shared/data/monet, else a synthetic picture) is enlarged to
``--width`` x ``--height`` and damaged in random 512 px patches (thin, medium and large
damage in turn) until about ``--damage`` of its area is damaged. A subprocess with
``--threads`` threads then reads the PNG, detects the damage, inpaints it window by window
and writes the result with the library calls ``artgan restore`` makes; a second one
repaints the true mask (``--mask``). Reported: seconds per stage, windows, and the
process's peak RSS. Both runs are made for each of ``--backends`` (what runs the
detector and the inpainter; OpenVINO's conversions are cached beforehand, so they are not
timed). With a model
whose detector marks most of the picture (e.g. random weights) the detected-mask repair is
skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_style import cpu_description

CHILD = r"""
import json, sys, time, resource, torch
torch.set_num_threads(int(sys.argv[5]))
from artgan.cli import freeze_at_exit
freeze_at_exit()  # as the artgan command ends
from artgan.imageio import read_image, write_image
import artgan_restore
from artgan.convert import pil_to_uint8, uint8_to_pil
from artgan_restore.restorer import Restorer, read_mask
image_path, mask_path, out_path, model = sys.argv[1:5]
times = {}
start = time.perf_counter()
restorer = Restorer.load(model, "cpu", sys.argv[6])
picture = read_image(image_path)
pixels = pil_to_uint8(picture.rgb)
times["read"] = time.perf_counter() - start
start = time.perf_counter()
opaque = None
if mask_path == "-":
    finding = restorer.find(pixels)
    mask, opaque = finding.mask, finding.opaque
    times["detect"] = time.perf_counter() - start
else:
    mask = read_mask(mask_path)
result = {"area": float(mask.float().mean())}
if result["area"] < 0.5:
    start = time.perf_counter()
    result["windows"] = len(restorer.plan(mask).windows)
    restored = restorer.inpaint(pixels, mask, opaque)  # with --mask: the detector's opacity
    times["inpaint"] = time.perf_counter() - start
    start = time.perf_counter()
    write_image(uint8_to_pil(restored), out_path)
    times["write"] = time.perf_counter() - start
result["times"] = times
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def damaged_scan(width: int, height: int, share: float, folder: Path):
    """(damaged picture, exact mask) as uint8 tensors, damaged in 512 px patches."""
    import numpy as np
    import torch
    from artgan_restore.damage import synthesize
    from PIL import Image

    from artgan.convert import pil_to_uint8

    first = sorted(folder.glob("*.jpg"))[:1]
    if first:
        source = Image.open(first[0]).convert("RGB")
    else:
        y, x = np.mgrid[0:256, 0:256] / 256
        pixels = np.stack([np.sin(9 * x + 4 * y), np.cos(7 * y), x * y], axis=-1)
        source = Image.fromarray(((pixels * 0.5 + 0.5) * 255).astype(np.uint8))
    image = pil_to_uint8(source.resize((width, height), Image.Resampling.BICUBIC))
    mask = torch.zeros(height, width, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    patch, step = 512, 0
    while float(mask.float().mean()) < share:
        top = int(torch.randint(0, height - patch, (), generator=generator))
        left = int(torch.randint(0, width - patch, (), generator=generator))
        crop = image[:, top : top + patch, left : left + patch].float() / 255
        level = ("thin", "medium", "large")[step % 3]
        hurt, where = synthesize(crop, level=level, seed=step)
        where = where[0].bool()
        region = image[:, top : top + patch, left : left + patch]
        region[:, where] = (hurt[:, where] * 255).round().to(torch.uint8)
        mask[top : top + patch, left : left + patch] |= where
        step += 1
    return image, mask


def run_child(image: Path, mask: str, out: Path, model: str, threads: int,
              backend: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(image), mask, str(out), model,
                           str(threads), backend], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="restore model name or path (default: the task's default)")
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--damage", type=float, default=0.02, help="damaged share of the area")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", nargs="+", choices=("torch", "openvino"),
                        default=["torch", "openvino"],
                        help="what runs the detector and inpainter, each measured in turn")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared"
                                              / "data" / "monet"))
    args = parser.parse_args()
    if args.model is None:
        from artgan.store import find_model

        args.model = str(find_model(None, "restore").path)

    from PIL import Image

    from artgan.convert import uint8_to_pil

    if "openvino" in args.backends:  # convert once into the cache, outside the timings
        from artgan_restore.restorer import Restorer

        Restorer.load(args.model, "cpu", "openvino")
    image, mask = damaged_scan(args.width, args.height, args.damage, Path(args.data))
    with tempfile.TemporaryDirectory() as folder:
        scan = Path(folder) / "scan.png"
        mask_path = Path(folder) / "mask.png"
        uint8_to_pil(image).save(scan)
        Image.fromarray(mask.numpy().astype("uint8") * 255).save(mask_path)
        rows = []
        for backend in args.backends:
            rows += [(f"detect + inpaint, {backend}",
                      run_child(scan, "-", Path(folder) / "a.png", args.model, args.threads,
                                backend)),
                     (f"--mask, {backend}",
                      run_child(scan, str(mask_path), Path(folder) / "b.png", args.model,
                                args.threads, backend))]
    print(f"\n{cpu_description()}")
    print(f"{args.width}x{args.height} scan, {float(mask.float().mean()):.2%} damaged, "
          f"{args.threads} threads, model {args.model}")
    print(f"{'run':26} {'mask area':>9} {'windows':>7} {'read s':>6} {'detect s':>8} "
          f"{'inpaint s':>9} {'write s':>7} {'total s':>8} {'peak RSS MB':>11}")
    for name, row in rows:
        times = row["times"]
        inpaint = f"{times['inpaint']:9.1f}" if "inpaint" in times else f"{'skipped':>9}"
        detect = f"{times['detect']:8.1f}" if "detect" in times else f"{'-':>8}"
        write = f"{times['write']:7.1f}" if "write" in times else f"{'-':>7}"
        print(f"{name:26} {row['area']:9.2%} {row.get('windows', '-'):>7} "
              f"{times['read']:6.1f} {detect} {inpaint} {write} {row['wall']:8.1f} "
              f"{row['peak_rss_mb']:11.0f}")
    print("(read: model and picture; total: the whole process, interpreter and imports included)")
    print(f"(the picture alone is {args.width * args.height * 3 / 2**20:.0f} MB as 8-bit RGB; "
          f"benchmark process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
