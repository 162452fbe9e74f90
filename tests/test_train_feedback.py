"""What a training run tells its user: progress from the start (paced by the clock, also
while pictures are cached), budgets already spent on resume, changed shape options on
resume, and which step was exported."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import artgan_generate
import numpy as np
import pytest
import torch
from artgan_generate.training import FastGANModule
from artgan_restore.model import DEFAULT_CONFIG as RESTORE_CONFIG
from artgan_restore.training import RestoreModule
from artgan_style_transfer.training import CycleGANModule
from PIL import Image
from test_train import ScoredGan, TinyGan, config, data_from, tiny_architecture  # noqa: F401
from torch import nn

from artgan import data
from artgan.cli import task_command
from artgan.errors import ArtganError
from artgan.nn import ARCHITECTURES
from artgan.store import load_model
from artgan.train import Trainer, checkpoint
from artgan.train import monitor as monitor_module
from artgan.train.options import train_options

artgan_generate.register_architectures(ARCHITECTURES.register)

STEP_LINE = re.compile(r"^step (\d+)/")


def progress_steps(err: str) -> list[int]:
    return [int(m.group(1)) for line in err.splitlines() if (m := STEP_LINE.match(line))]


# --- 1. progress from the start, paced by time ----------------------------------------------


def test_progress_shows_the_first_step_then_goes_by_the_clock(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(monitor_module, "PROGRESS_SECONDS", 1e9)
    Trainer(TinyGan(), data_from, config(tmp_path, steps=6, log_every=2)).fit()
    err = capsys.readouterr().err
    assert err.startswith("training on ") and "until step 6" in err.splitlines()[0]
    assert progress_steps(err) == [1, 6]  # the first step and the end, not every log_every
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text()
               .splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]  # the JSON log keeps its pace

    monkeypatch.setattr(monitor_module, "PROGRESS_SECONDS", 0.0)
    Trainer(TinyGan(), data_from, config(tmp_path / "b", steps=4, log_every=100)).fit()
    assert progress_steps(capsys.readouterr().err) == [1, 2, 3, 4]


def test_monitor_lines_are_paced_by_seconds_not_steps(tmp_path, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(monitor_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    monitor = monitor_module.Monitor(tmp_path, total_steps=100, budget_seconds=None,
                                     stream=stream)
    monitor.begin(0, "training")
    for step in range(1, 101):  # one step a second
        now[0] += 1.0
        monitor.record({"loss": torch.tensor(float(step))})
        if step % 25 == 0:
            monitor.log(step, elapsed=step, images=step, extra={})
        monitor.progress(step, elapsed=step)
    monitor.progress(100, elapsed=100, final=True)  # the end is shown...
    monitor.progress(100, elapsed=100, final=True)  # ...once
    lines = stream.getvalue().splitlines()
    assert lines[0] == "training"
    shown = progress_steps(stream.getvalue())
    every = int(monitor_module.PROGRESS_SECONDS)
    assert shown == [1, *range(1 + every, 100, every), 100]
    assert "1.00 it/s" in lines[2] and "ETA" in lines[2]
    assert len(lines) == len(shown) + 1  # log points write no console line of their own


def test_slow_steps_show_seconds_per_step(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(monitor_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    monitor = monitor_module.Monitor(tmp_path, total_steps=10, budget_seconds=None,
                                     stream=stream)
    monitor.begin(0, "training")
    now[0] = 4.0
    monitor.record({"loss": 2.0})
    monitor.progress(1, elapsed=4.0)
    assert stream.getvalue().splitlines()[1] == "step 1/10  4.00 s/it  ETA 0m36s  loss=2"


def pictures(folder: Path, count: int, seed: int = 0, side: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8)).save(
            folder / f"p{i:02d}.png")
    return folder


def test_caching_a_slow_folder_shows_progress_by_time(tmp_path, monkeypatch, capsys):
    folder = pictures(tmp_path / "pics", 12)
    data.ImageFolder(folder, 16, cache=True)
    assert capsys.readouterr().err == ""  # quick: not a word

    clock = iter(range(0, 10_000, 3))  # each picture takes 3 s
    monkeypatch.setattr(data, "monotonic", lambda: float(next(clock)))
    data.ImageFolder(folder, 16, cache=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith(f"cached 12 pictures of {folder}")
    progress = lines[:-1]
    assert 2 <= len(progress) < 12  # paced by time, not a line per picture
    percents = []
    for line in progress:
        assert line.startswith(f"caching 12 pictures of {folder} in memory ... ")
        percents.append(int(line.rsplit(" ", 1)[1].rstrip("%")))
    assert percents == sorted(percents) and percents[-1] < 100


# --- 2. --minutes counts the whole run; a spent budget on resume is refused --------------


def test_minutes_help_says_it_counts_across_resumes():
    help_text = next(o for o in train_options() if o.name == "minutes").help
    assert "across resumes" in help_text


def test_resume_with_the_minutes_budget_spent_is_refused(tmp_path, capsys):
    first = Trainer(TinyGan(), data_from, config(tmp_path, steps=None, minutes=0.002))
    assert first.fit().stop_reason == "time"
    latest = tmp_path / "run" / "checkpoints" / checkpoint.LATEST
    before = latest.read_bytes()
    again = Trainer(TinyGan(), data_from,
                    config(tmp_path, steps=None, minutes=0.002, resume=True))
    with pytest.raises(ArtganError, match=r"the --minutes budget \(0\.002\) was already spent "
                                          r"by the earlier run .*give a larger --minutes"):
        again.fit()
    assert latest.read_bytes() == before  # nothing trained, no checkpoint rewritten
    more = Trainer(TinyGan(), data_from, config(tmp_path, steps=None, minutes=0.02, resume=True))
    assert more.fit().steps_this_run >= 1


# --- 3. a shape option changed on resume ---------------------------------------------------


class WideGan(TinyGan):
    """TinyGan with a discriminator of ``width`` channels that names its shape option."""

    def __init__(self, width: int, named: bool = True):
        super().__init__()
        self.width, self.named = width, named

    def networks(self):
        networks = super().networks()
        networks["discriminator"] = nn.Sequential(
            nn.Conv2d(3, self.width, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
            nn.Linear(self.width * 16, 1))
        return networks

    def shape_options(self):
        return {"--width": self.width, "--halo": True} if self.named else {}


def test_resume_with_another_width_names_the_option_in_one_line(tmp_path):
    Trainer(WideGan(16), data_from, config(tmp_path, steps=2)).fit()
    with pytest.raises(ArtganError) as error:
        Trainer(WideGan(8), data_from, config(tmp_path, steps=4, resume=True))
    message = str(error.value)
    assert "\n" not in message
    assert "was trained with --width 16, not 8; resume with the same shape options or " \
           "start a new --name" in message
    Trainer(WideGan(16), data_from, config(tmp_path, steps=4, resume=True)).fit()


def test_resume_misfit_without_named_options_names_the_tensor(tmp_path):
    Trainer(WideGan(16, named=False), data_from, config(tmp_path, steps=2)).fit()
    with pytest.raises(ArtganError) as error:
        Trainer(WideGan(8, named=False), data_from, config(tmp_path, steps=4, resume=True))
    message = str(error.value)
    assert "\n" not in message and "Error(s) in loading state_dict" not in message
    assert "its discriminator's 0.weight is 16x3x3x3, this run's 8x3x3x3" in message


def test_the_built_in_tasks_name_their_shape_options():
    restore = RestoreModule(RESTORE_CONFIG).shape_options()
    assert restore == {"--size": 256, "--width": 24, "--blocks": 6, "--detector-width": 12,
                       "--detector-depth": 4, "--detector-opacity": True,
                       "--inpainter-upsample": "resize"}
    style = CycleGANModule({"width": 8, "n_blocks": 2, "n_down": 2, "upsample": "nearest"},
                           d_width=16, d_layers=2).shape_options()
    assert style == {"--width": 8, "--blocks": 2, "--upsample": "nearest", "--d-width": 16,
                     "--d-layers": 2, "--antialias": False}
    assert FastGANModule(32, 4).shape_options() == {"--size": 32, "--width": 4,
                                                    "--antialias": False, "--noise": False}
    assert FastGANModule(32, 4, noise=True).shape_options()["--noise"] is True


# --- 4. which step was exported ----------------------------------------------------------


def test_export_says_which_step_and_stores_it_in_the_card(tmp_path, capsys):
    trainer = Trainer(ScoredGan([4.0, 3.0, 1.0, 2.0, 5.0]), data_from,
                      config(tmp_path, steps=7, validate_every=2))
    trainer.fit()
    capsys.readouterr()
    card = load_model(trainer.export(tmp_path / "best.safetensors", task="generate"),
                      "generate").info.card
    assert "exported step 4 of 7 (best validation score 1)" in capsys.readouterr().err
    assert card["exported_step"] == 4 and card["steps"] == 7

    last = Trainer(TinyGan(), data_from, config(tmp_path / "b", steps=6))
    last.fit()
    capsys.readouterr()
    card = load_model(last.export(tmp_path / "last.safetensors", task="generate"),
                      "generate").info.card
    assert "exported step 6 of 6 (the last step)" in capsys.readouterr().err
    assert card["exported_step"] == 6


# --- the same through `artgan train generate` ----------------------------------------------


def train_generate(root: Path, *extra: str) -> None:
    task_command(artgan_generate.TASK, "train").main([
        "--data", str(root / "data"), "--name", "feedback", "--size", "32",
        "--batch-size", "3", "--run-dir", str(root / "run"),
        "--out", str(root / "model.safetensors"), "--device", "cpu", "--precision", "fp32",
        *extra,
    ], standalone_mode=False)


def test_generate_cli_resume_width_budget_and_exported_step(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pictures(tmp_path / "data", 4)
    train_generate(tmp_path, "--width", "4", "--minutes", "0.0005")
    err = capsys.readouterr().err
    model = tmp_path / "model.safetensors"
    card = load_model(model, "generate").info.card
    assert card["exported_step"] == card["steps"] >= 1
    assert f"exported step {card['steps']} of {card['steps']} (the last step)" in err
    written = model.read_bytes()

    with pytest.raises(ArtganError, match="was trained with --width 4, not 8; "):
        train_generate(tmp_path, "--width", "8", "--minutes", "0.0005", "--resume")
    with pytest.raises(ArtganError, match=r"the --minutes budget \(0\.0005\) was already spent"):
        train_generate(tmp_path, "--width", "4", "--minutes", "0.0005", "--resume")
    assert model.read_bytes() == written  # the exported model is left as it was
