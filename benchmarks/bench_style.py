"""Style-transfer speed and memory on the CPU: artgan's inference path against plain PyTorch.

    PYTHONPATH=.:plugins python benchmarks/bench_style.py [--model monet] [--threads 2]

Rows, in seconds per image, each measured in its own subprocess (``--rounds`` subprocesses per
row, taken in turns so that load from other programs hits every row alike; the best of
``--repeat`` runs after a warm-up in each; CPU seconds in brackets):
(a) the default generator, plain eager fp32 NCHW forward over the whole image;
(b) the same generator through artgan's path (``StylePipeline``: bf16 autocast where the CPU
    computes it natively, channels-last, inference mode, folded instance norms, tiles);
(r) the paper's generator (9 blocks, 64 channels, transposed convolutions), plain eager fp32.
Then the peak resident memory of (b) stylizing an 8000x6000 picture (``--big``), PIL in and PIL
out.
Without ``--model`` the generators are randomly initialised (speed does not depend on the
weights); with it, (a) and (b) use that model's a2b generator.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

TARGETS = "targets: (b) >= 2x faster than (a) at 1024 px, |b - a| <= 3/255; (b) >= 6x faster " \
          "than (r); 8000x6000 with peak RSS <= 1.5 GB"


def _photo(width: int, height: int):
    """A ``width`` x ``height`` test photo: the first training photo if present, else synthetic."""
    import numpy as np
    from PIL import Image

    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "photo",
                        "photo_0000.jpg")
    if os.path.exists(path):
        return Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    pixels = np.stack([np.sin(9 * x + 4 * y), np.cos(7 * y), x * y], axis=-1)
    return Image.fromarray(((pixels * 0.5 + 0.5) * 255).astype(np.uint8))


def _generator(mode: str, model: str | None):
    import torch
    from artgan_style_transfer.model import DEFAULT_CONFIG, PAPER_CONFIG
    from artgan_style_transfer.task import StyleTransferTask

    from artgan.nn.blocks import ResnetGenerator

    torch.manual_seed(0)
    if mode == "r":
        return ResnetGenerator(**PAPER_CONFIG).eval()
    if model is not None:
        return StyleTransferTask().load(model, device="cpu").generator.to(
            memory_format=torch.contiguous_format)
    return ResnetGenerator(**DEFAULT_CONFIG).eval()


def _eager(generator, picture):
    """Plain PyTorch: fp32, NCHW, no_grad, the whole image at once."""
    import torch
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    with torch.no_grad():
        x = pil_to_tensor(picture).float().unsqueeze(0) / 127.5 - 1
        y = ((generator(x)[0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return Image.fromarray(y.permute(1, 2, 0).numpy())


def _pipeline(generator):
    import torch
    from artgan_style_transfer.task import StylePipeline

    return StylePipeline(generator, torch.device("cpu"))


def _dimensions(text: str) -> tuple[int, int]:
    """``1024`` (a square) or ``8000x6000`` (width x height)."""
    width, _, height = text.partition("x")
    return int(width), int(height or width)


def worker(mode: str, size: tuple[int, int], repeat: int, model: str | None) -> dict:
    """Time one row in this process (after a warm-up run) and report its numbers as JSON."""
    import numpy as np


    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    picture = _photo(*size)
    generator = _generator(mode, model)
    run = _eager if mode in ("a", "r") else None
    if mode in ("b", "rss"):
        pipeline = _pipeline(generator)

        def run(_generator, image):
            return pipeline(image)

    if mode == "rss":
        start = time.perf_counter()
        run(generator, picture)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"seconds": seconds, "peak_mb": peak, "before_mb": before}
    out = run(generator, picture)
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = run(generator, picture)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    result = {"seconds": min(times), "cpu": min(cpu)}
    if mode == "b":
        plain = _eager(_generator("a", model), picture)
        diff = np.abs(np.asarray(out, np.float32) - np.asarray(plain, np.float32))
        result["mad"] = float(diff.mean())
    return result


def _spawn(mode: str, size: int | str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    command = [sys.executable, __file__, "--worker", mode, "--size", str(size),
               "--repeat", str(args.repeat), "--threads", str(args.threads)]
    if args.model:
        command += ["--model", args.model]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"worker {mode} {size} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="style model name or path (default: random weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--big", default="8000x6000", help="memory test picture, WIDTHxHEIGHT")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=_dimensions, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(worker(args.worker, args.size, args.repeat, args.model)))
        return

    import torch

    from artgan.infer import autocast_dtype

    dtype = autocast_dtype(torch.device("cpu"))
    print(f"CPU, {args.threads} threads; artgan precision: {dtype or 'float32'}; "
          f"weights: {args.model or 'random'}")
    print(f"{'size':>6} {'(a) eager':>15} {'(b) artgan':>15} {'a/b':>5} {'(r) paper':>15} "
          f"{'r/b':>5} {'|b-a| /255':>10}")
    for size in args.sizes:
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for mode in ("a", "b", "r"):
                result = _spawn(mode, size, args)
                if mode not in best or result["seconds"] < best[mode]["seconds"]:
                    best[mode] = result
        a, b, r = best["a"], best["b"], best["r"]

        def cell(row: dict) -> str:
            return f"{row['seconds']:.2f}s ({row['cpu']:.1f})"

        print(f"{size:>6} {cell(a):>15} {cell(b):>15} {a['seconds'] / b['seconds']:>4.1f}x "
              f"{cell(r):>15} {r['seconds'] / b['seconds']:>4.1f}x {b['mad']:>10.3f}")
    big = _spawn("rss", args.big, args)
    print(f"{args.big} through (b), tiled: {big['seconds']:.1f} s, peak RSS "
          f"{big['peak_mb']:.0f} MB ({big['before_mb']:.0f} MB after imports)")
    print(TARGETS)


if __name__ == "__main__":
    main()
