"""Resume is exact for every built-in task, on real folders with random crops.

A run of N steps and a run of N/2 steps resumed to N (with a schedule that does not depend
on N) must end with identical tensors
(networks, optimizers, EMA and the task's own state such as CycleGAN's history pools):
the data order, each picture's crop and flip, the augmentation and the task's noise all
continue where they stopped.
"""

from pathlib import Path

import artgan_generate
import artgan_restore
import artgan_style_transfer
import numpy as np
import pytest
import torch
from PIL import Image

from artgan.cli import task_command
from artgan.nn import ARCHITECTURES
from artgan.train import checkpoint

TASKS = {"generate": artgan_generate, "style-transfer": artgan_style_transfer,
         "restore": artgan_restore}
for plugin in TASKS.values():  # what the plugin manager does
    plugin.register_architectures(ARCHITECTURES.register)


def pictures(folder: Path, count: int, seed: int) -> str:
    """Pictures of mixed sizes, larger than the crops, so crops and flips are random."""
    if folder.exists():
        return str(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = rng.integers(40, 72, 2)
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(
            folder / f"p{i:02d}.png")
    return str(folder)


def arguments(task: str, root: Path) -> list[str]:
    if task == "generate":
        return ["--data", pictures(root / "data", 9, 0), "--size", "32", "--width", "4",
                "--batch-size", "3", "--augment", "translation,color"]
    if task == "style-transfer":
        return ["--domain-a", pictures(root / "a", 7, 1), "--domain-b", pictures(root / "b", 5, 2),
                "--size", "16", "--width", "4", "--blocks", "1", "--d-width", "4",
                "--d-layers", "2", "--d-padding", "reflect", "--batch-size", "2", "--pool", "3",
                "--augment", "translation",
                # the default (linear decay over --steps) differs between a 3- and a 6-step run
                "--lr-schedule", "constant"]
    return ["--data", pictures(root / "data", 9, 3), "--size", "32", "--load-size", "48",
            "--width", "4", "--blocks", "1", "--detector-width", "4", "--detector-depth", "2",
            "--batch-size", "3", "--detector-steps", "2"]


def train(task: str, root: Path, run: Path, steps: int, *extra: str) -> dict:
    task_command(TASKS[task].TASK, "train").main([
        *arguments(task, root), "--name", "resumed", "--steps", str(steps),
        "--run-dir", str(run),
        "--out", str(run / "model.safetensors"), "--device", "cpu", "--precision", "fp32",
        "--ema", "0.9", "--data-license", "test pictures", *extra,
    ], standalone_mode=False)
    return checkpoint.read(run / "checkpoints" / checkpoint.LATEST)


def tensors(state, path: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a checkpoint, by its path."""
    if isinstance(state, torch.Tensor):
        return {path: state}
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)):
        items = enumerate(state)
    else:
        return {}
    found = {}
    for key, value in items:
        found.update(tensors(value, f"{path}/{key}"))
    return found


@pytest.mark.parametrize("task", list(TASKS))
def test_resume_is_bit_identical(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path / "home"))
    straight = train(task, tmp_path, tmp_path / "straight", 6)
    train(task, tmp_path, tmp_path / "resumed", 3)
    resumed = train(task, tmp_path, tmp_path / "resumed", 6, "--resume")
    assert resumed["step"] == straight["step"] == 6
    keep = ("networks", "optimizers", "ema", "module", "augment")
    expected = tensors({key: straight[key] for key in keep})
    got = tensors({key: resumed[key] for key in keep})
    assert expected.keys() == got.keys()
    different = [name for name in expected if not torch.equal(expected[name], got[name])]
    assert not different, f"{len(different)} of {len(expected)} tensors differ: {different[:5]}"
