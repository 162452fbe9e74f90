"""Where OpenVINO's time goes on a style generator: its work in GFLOP and its per-layer
profile, to tell how close the backend runs to what the CPU's kernels can do.

    PYTHONPATH=.:plugins OMP_NUM_THREADS=1 python benchmarks/profile_style_openvino.py \
        [--model monet] [--size 1024] [--runs 5]

Prints the generator's floating-point operations at ``--size`` px (torch's FlopCounterMode,
a multiply-add counted as two), the median seconds of ``--runs`` OpenVINO runs compiled for
that size in the precision artgan picks (``artgan.backends.inference_precision``), the rate
over the whole run, and the layer types that take the most time with their share (OpenVINO's
``PERF_COUNT``), the convolutions' rate among them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from artgan import backends, cpu, store
from artgan.nn.blocks import UnitRange


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="monet", help="style model name or path")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    network = UnitRange(store.load_model(args.model, "style-transfer").network["a2b"]).eval()
    example = torch.rand(1, 3, args.size, args.size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(example)
    gflop = counter.get_total_flops() / 1e9

    model = backends.convert(network, [example], [(1, 3, args.size, args.size)])
    config = {"INFERENCE_PRECISION_HINT": backends.inference_precision(), "PERF_COUNT": True}
    if cpu.threads():
        config["INFERENCE_NUM_THREADS"] = cpu.threads()
    request = backends.openvino().Core().compile_model(model, "CPU", config).create_infer_request()
    pixels = example.numpy().astype(np.float32)
    request.infer([pixels])  # warm-up
    seconds = []
    for _ in range(args.runs):
        start = time.perf_counter()
        request.infer([pixels])
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)

    layers: dict[str, float] = defaultdict(float)
    for layer in request.get_profiling_info():
        layers[layer.node_type] += layer.real_time.total_seconds()
    profiled = sum(layers.values())
    print(f"{args.model} a2b at {args.size} px: {gflop:.1f} GFLOP; OpenVINO "
          f"{config['INFERENCE_PRECISION_HINT']}, {cpu.threads() or 'default'} threads: "
          f"median {median:.3f} s of {args.runs}, {gflop / median:.0f} GFLOP/s over the run")
    for kind, spent in sorted(layers.items(), key=lambda item: -item[1])[:6]:
        print(f"  {kind:<14} {spent:7.3f} s  {spent / profiled:6.1%}")
    convolutions = layers.get("Convolution", 0.0)
    if convolutions:
        print(f"  convolutions alone: {gflop / convolutions:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
