"""``benchmarks/gpu/train_all.sh``, the prepared GPU run, works end to end with tiny settings.

A lent GPU is rare and its minutes are few, so the script must not first fail there on a
typo or a changed option: here it trains every model with tiny settings on the CPU.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from artgan import store

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"monet": "style-transfer", "vangogh": "style-transfer", "ukiyoe": "style-transfer",
          "generate-monet": "generate", "restore-general": "restore"}


def test_the_gpu_script_trains_every_model_with_tiny_settings(tmp_path):
    rng = np.random.default_rng(0)
    for folder in ("photo", "monet", "vangogh", "ukiyoe"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / folder / f"{i}.png")
    out = tmp_path / "out"
    env = {**os.environ, "ARTGAN_GPU_TINY": "1", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu" / "train_all.sh"),
                             str(tmp_path / "data"), str(out)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = (out / "checks.txt").read_text()
    assert "skipped: no CUDA" in checks and "FAILED" not in checks
    for name, task in MODELS.items():
        loaded = store.load_model(out / f"{name}.safetensors", task)
        assert loaded.info.card["steps"] == 2, name


def test_the_gpu_script_names_a_missing_data_folder(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu" / "train_all.sh"),
                             str(tmp_path), str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "photo: no such folder" in result.stderr
