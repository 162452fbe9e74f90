"""Style-transfer speed and memory on the CPU: artgan's inference path against plain PyTorch,
and its backends side by side.

    PYTHONPATH=.:plugins python benchmarks/bench_style.py [--model monet] [--threads 1 2]
        [--backends-only | --whole-process]

The CPU's name and flags (avx2, avx512_bf16, amx) come first. Then, per thread count:

**Backends** at ``--backend-size`` px (default 1024), in seconds per image, the median of every
timed run of ``--rounds`` subprocesses per column taken in turns (``--repeat`` runs after a
warm-up in each): artgan's path (``StylePipeline``) with torch in fp32, with torch as it runs
today (bf16 autocast where the CPU computes it natively), and with OpenVINO (bf16 on such
CPUs, else f32; its conversion cached in ``$ARTGAN_HOME``, outside the timing); the speed-up
of OpenVINO over today's path, and each column's mean and max difference from torch fp32 on
the uint8 output (/255).

**Against plain PyTorch** (skipped with ``--backends-only``), each row in its own subprocess
(``--rounds`` subprocesses per row, taken in turns so that load from other programs hits
every row alike; the best of ``--repeat`` runs after a warm-up in each; CPU seconds in
brackets):
(a) the default generator, plain eager fp32 NCHW forward over the whole image;
(b) the same generator through artgan's path (``StylePipeline``: bf16 autocast where the CPU
    computes it natively, channels-last, inference mode, folded instance norms, tiles);
(r) the paper's generator (9 blocks, 64 channels, transposed convolutions), plain eager fp32.
Then the peak resident memory of (b) stylizing an 8000x6000 picture (``--big``), PIL in and PIL
out, and of OpenVINO doing the same (tiled too: far over its one-pass bound).

**Whole process** (``--whole-process``, instead of the tables): what a user waits for, the
command ``python -m artgan run style-transfer --style MODEL --backend B photo --out folder``
(the ``artgan`` command's own entry point) timed from outside, one new process per run, for
``torch`` and ``openvino`` taken in turns, ``--rounds`` runs each after one untimed run of
each (which fills OpenVINO's conversion cache), at each ``--threads`` (``OMP_NUM_THREADS``).
The photo is ``examples/photos/chelsea.jpg`` enlarged to ``--whole-size`` px on its longer
side (Pillow's Lanczos). It prints the median seconds, the speed-up, each run's peak RSS
and the difference between the two backends' outputs.
Without ``--model`` the generators are randomly initialised (speed does not depend on the
weights, but differences do: give a model for the backends' errors, and for OpenVINO's cache);
with it, (a), (b) and the backends use that model's a2b generator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TARGETS = "targets: (b) >= 2x faster than (a) at 1024 px, |b - a| <= 3/255; (b) >= 6x faster " \
          "than (r); 8000x6000 with peak RSS <= 1.5 GB"
BACKEND_TARGETS = "target (issue 21): openvino >= 2x faster than torch today at 1024 px on a " \
                  "CPU with AVX-512-BF16, mean |openvino - torch fp32| <= 0.5/255"
WHOLE_TARGET = "target (issue 21): the whole process >= 1.5x faster with --backend openvino"
BACKENDS = {"t32": "torch fp32", "b": "torch today", "ov": "openvino"}
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description() -> str:
    """The CPU's model name and which of ``FLAGS`` it has (from /proc/cpuinfo on Linux)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    present = [flag for flag in FLAGS if flag in flags] or ["flags unknown"]
    from artgan.cpu import cpu_isa_limit

    limit = cpu_isa_limit()
    limited = f"; oneDNN limited to {limit} (ONEDNN_MAX_CPU_ISA)" if limit else ""
    return f"{name}, {os.cpu_count()} logical CPUs; {' '.join(present)}{limited}"


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


def _pipeline(generator, mode: str = "b", model: str | None = None):
    """artgan's path: ``b`` as today, ``t32`` without autocast, ``ov`` with OpenVINO (a model
    goes through ``load``, which gives it a cache entry)."""
    import torch
    from artgan_style_transfer.task import StylePipeline, StyleTransferTask

    backend = "openvino" if mode == "ov" else "torch"
    if model is not None:
        pipeline = StyleTransferTask().load(model, device="cpu", backend=backend)
    else:
        pipeline = StylePipeline(generator, torch.device("cpu"), backend=backend)
    if mode == "t32":
        pipeline.dtype = None
    return pipeline


def _dimensions(text: str) -> tuple[int, int]:
    """``1024`` (a square) or ``8000x6000`` (width x height)."""
    width, _, height = text.partition("x")
    return int(width), int(height or width)


def worker(mode: str, size: tuple[int, int], repeat: int, model: str | None,
           save: str | None = None) -> dict:
    """Time one row in this process (after a warm-up run) and report its numbers as JSON;
    ``save``: also write the output there (.npy), for the backends' differences."""
    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    picture = _photo(*size)
    generator = _generator(mode, model)
    run = _eager if mode in ("a", "r") else None
    if mode in ("b", "rss", "t32", "ov", "ovrss"):
        pipeline = _pipeline(generator, {"rss": "b", "ovrss": "ov"}.get(mode, mode), model)

        def run(_generator, image):
            return pipeline(image)

    if mode in ("rss", "ovrss"):
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
    if save:
        np.save(save, np.asarray(out))
    result = {"seconds": min(times), "cpu": min(cpu), "times": times}
    if mode == "b" and not save:
        plain = _eager(_generator("a", model), picture)
        diff = np.abs(np.asarray(out, np.float32) - np.asarray(plain, np.float32))
        result["mad"] = float(diff.mean())
    return result


def _spawn(mode: str, size: int | str, args: argparse.Namespace, threads: int,
           save: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", mode, "--size", str(size),
               "--repeat", str(args.repeat), "--threads", str(threads)]
    if args.model:
        command += ["--model", args.model]
    if save:
        command += ["--save", save]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"worker {mode} {size} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def backends_table(args: argparse.Namespace, threads: int) -> None:
    """The backends side by side at ``--backend-size``, medians of interleaved runs."""
    import numpy as np

    times: dict[str, list[float]] = {mode: [] for mode in BACKENDS}
    with tempfile.TemporaryDirectory() as folder:
        saved = {mode: os.path.join(folder, f"{mode}.npy") for mode in BACKENDS}
        for round_ in range(args.rounds):
            for mode in BACKENDS:
                save = saved[mode] if round_ == 0 else None
                times[mode] += _spawn(mode, args.backend_size, args, threads, save)["times"]
        outputs = {mode: np.load(path).astype(np.float32) for mode, path in saved.items()}
    median = {mode: statistics.median(values) for mode, values in times.items()}
    print(f"backends at {args.backend_size} px, {threads} thread{'s' * (threads > 1)}, "
          f"median of {len(times['ov'])} runs each:")
    print(f"{'':>12} {'seconds':>8} {'vs today':>9} {'mean |d| /255':>14} {'max |d| /255':>13}")
    for mode, label in BACKENDS.items():
        diff = np.abs(outputs[mode] - outputs["t32"])
        print(f"{label:>12} {median[mode]:>7.2f}s {median['b'] / median[mode]:>8.2f}x "
              f"{diff.mean():>14.3f} {diff.max():>13.0f}")


def _enlarged(size: int, folder: str) -> str:
    """``examples/photos/chelsea.jpg`` enlarged to ``size`` px on its longer side, as a JPEG
    in ``folder``; its path."""
    from PIL import Image

    source = os.path.join(os.path.dirname(__file__), "..", "examples", "photos", "chelsea.jpg")
    photo = Image.open(source).convert("RGB")
    scale = size / max(photo.size)
    width, height = (round(side * scale) for side in photo.size)
    path = os.path.join(folder, f"photo{size}.jpg")
    photo.resize((width, height), Image.Resampling.LANCZOS).save(path)
    return path


def _cli_run(backend: str, photo: str, out: str, model: str, threads: int) -> tuple[float, float]:
    """One ``artgan run style-transfer`` process: its wall-clock seconds and peak RSS (MB)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "artgan", "run", "style-transfer", "--style", model,
               "--backend", backend, photo, "--out", out]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)  # wait4: this process's own peak RSS
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            errors.seek(0)
            raise SystemExit(f"artgan run --backend {backend} failed:\n"
                             f"{errors.read().decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024


def whole_process(args: argparse.Namespace) -> None:
    """The ``--whole-process`` figures (see the module's docstring)."""
    import numpy as np
    from PIL import Image

    model = args.model or "monet"
    with tempfile.TemporaryDirectory() as folder:
        photo = _enlarged(args.whole_size, folder)
        width, height = Image.open(photo).size
        outs = {backend: os.path.join(folder, backend) for backend in ("torch", "openvino")}
        print(f"artgan run style-transfer --style {model} on a {width}x{height} photo, one "
              f"process per run, backends in turns, after one untimed run each:")
        for threads in args.threads:
            runs: dict[str, list[tuple[float, float]]] = {backend: [] for backend in outs}
            for round_ in range(args.rounds + 1):
                for backend, out in outs.items():
                    result = _cli_run(backend, photo, out, model, threads)
                    if round_:
                        runs[backend].append(result)
            median = {backend: statistics.median(s for s, _ in results)
                      for backend, results in runs.items()}
            for backend, results in runs.items():
                print(f"{threads} thread{'s' * (threads > 1)}, {backend:>8}: median "
                      f"{median[backend]:.2f} s of {', '.join(f'{s:.2f}' for s, _ in results)};"
                      f" peak RSS {max(rss for _, rss in results):.0f} MB")
            print(f"{threads} thread{'s' * (threads > 1)}: openvino "
                  f"{median['torch'] / median['openvino']:.2f}x faster than torch")
        pictures = [np.asarray(Image.open(os.path.join(out, os.listdir(out)[0])), np.float32)
                    for out in outs.values()]
        diff = np.abs(pictures[0] - pictures[1])
        print(f"openvino vs torch outputs (/255): mean {diff.mean():.3f}, max {diff.max():.0f}")
    print(WHOLE_TARGET)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="style model name or path (default: random weights)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--backend-size", type=int, default=1024)
    parser.add_argument("--backends-only", action="store_true",
                        help="only the backends table (no paper generator, no memory test)")
    parser.add_argument("--big", default="8000x6000", help="memory test picture, WIDTHxHEIGHT")
    parser.add_argument("--whole-process", action="store_true",
                        help="time the artgan command itself, torch against openvino")
    parser.add_argument("--whole-size", type=int, default=2048,
                        help="--whole-process: the photo's longer side in px")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=_dimensions, help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(args.threads[0])
        print(json.dumps(worker(args.worker, args.size, args.repeat, args.model, args.save)))
        return

    import torch

    from artgan.infer import autocast_dtype

    dtype = autocast_dtype(torch.device("cpu"))
    try:
        import openvino

        openvino_version = openvino.__version__.split("-")[0]
    except ImportError:
        raise SystemExit('the backends table needs openvino: pip install "artgan[openvino]"'
                         ) from None
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, openvino {openvino_version}; torch today: "
          f"{dtype or 'float32'}; weights: {args.model or 'random'}")
    if args.whole_process:
        whole_process(args)
        return
    for threads in args.threads:
        backends_table(args, threads)
        if not args.backends_only:
            plain_table(args, threads)
    print(BACKEND_TARGETS)
    if not args.backends_only:
        for mode, label in (("rss", "(b)"), ("ovrss", "openvino")):
            big = _spawn(mode, args.big, args, args.threads[-1])
            print(f"{args.big} through {label}, tiled, {args.threads[-1]} threads: "
                  f"{big['seconds']:.1f} s, peak RSS {big['peak_mb']:.0f} MB "
                  f"({big['before_mb']:.0f} MB after imports)")
        print(TARGETS)


def plain_table(args: argparse.Namespace, threads: int) -> None:
    """artgan's path today against plain PyTorch and the paper's generator."""
    print(f"against plain PyTorch, {threads} thread{'s' * (threads > 1)}, best of each row:")
    print(f"{'size':>6} {'(a) eager':>15} {'(b) artgan':>15} {'a/b':>5} {'(r) paper':>15} "
          f"{'r/b':>5} {'|b-a| /255':>10}")
    for size in args.sizes:
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for mode in ("a", "b", "r"):
                result = _spawn(mode, size, args, threads)
                if mode not in best or result["seconds"] < best[mode]["seconds"]:
                    best[mode] = result
        a, b, r = best["a"], best["b"], best["r"]

        def cell(row: dict) -> str:
            return f"{row['seconds']:.2f}s ({row['cpu']:.1f})"

        print(f"{size:>6} {cell(a):>15} {cell(b):>15} {a['seconds'] / b['seconds']:>4.1f}x "
              f"{cell(r):>15} {r['seconds'] / b['seconds']:>4.1f}x {b['mad']:>10.3f}")


if __name__ == "__main__":
    main()
