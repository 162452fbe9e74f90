#!/usr/bin/env bash
# On a lent GPU machine (its Python has torch, pillow, click, pluggy, safetensors): install the
# wheels benchmarks/gpu/prepare.sh packed and artgan itself (its plugins are found through
# entry points, so it must be installed), then train everything into $OUT.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .gpu/whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
PYTHONUNBUFFERED=1 bash benchmarks/gpu/train_all.sh .gpu/data "${OUT:-gpu-out}"
