"""The shared Trainer: loop, checkpoints and exact resume, crash safety, guard, schedules."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys

import click
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import artgan.cpu
import artgan.infer
from artgan.augment import Augment
from artgan.errors import ArtganError
from artgan.losses import LOSSES
from artgan.nn import ARCHITECTURES
from artgan.store import load_model
from artgan.train import GanModule, TrainConfig, Trainer, checkpoint
from artgan.train.hardware import pick_precision
from artgan.train.options import config_from_options, train_options
from artgan.train.trainer import _schedule

NZ, SIZE = 8, 8


def tiny_generator(nz: int = NZ, size: int = SIZE) -> nn.Module:
    return nn.Sequential(
        nn.Linear(nz, 3 * size * size), nn.Tanh(), nn.Unflatten(1, (3, size, size))
    )


class TinyGan(GanModule):
    """A linear generator and a one-conv critic on 8 px images: enough to exercise the loop."""

    ema = ("generator",)

    def __init__(self, nan_steps: frozenset[int] = frozenset()):
        self.nan_steps = nan_steps

    def networks(self):
        disc = nn.Sequential(
            nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 16, 1)
        )
        return {"generator": tiny_generator(), "discriminator": disc}

    def optimizers(self, networks):
        return {
            "gen": torch.optim.Adam(networks["generator"].parameters(), 1e-2, betas=(0.5, 0.99)),
            "disc": torch.optim.Adam(networks["discriminator"].parameters(), 1e-2),
        }

    def training_step(self, batch, step):
        gen, disc = step.networks["generator"], step.networks["discriminator"]
        loss = LOSSES.get("nonsaturating")
        z = torch.randn(batch.shape[0], NZ, device=step.device)
        with step.autocast():
            fake = gen(z)
            real_logits = disc(step.augment(batch))
            d_loss = loss.d_loss(real_logits, disc(step.augment(fake.detach())))
        if step.index in self.nan_steps:
            d_loss = d_loss * float("nan")
        step.update_augment(real_logits)
        step.backward(d_loss, "disc")
        with step.autocast():
            g_loss = loss.g_loss(disc(step.augment(fake)))
        step.backward(g_loss, "gen")
        return {"d": d_loss, "g": g_loss}

    def fixed_inputs(self, batch):
        return torch.randn(4, NZ, device=batch.device)

    def sample(self, networks, fixed):
        return networks["generator"](fixed)

    def export(self, networks):
        return networks["generator"], "test-tiny-generator", {"nz": NZ, "size": SIZE}


@pytest.fixture(autouse=True)
def tiny_architecture():
    ARCHITECTURES.register("test-tiny-generator", tiny_generator, replace=True)
    yield
    ARCHITECTURES.unregister("test-tiny-generator")


def data_from(start: int):
    """Batch i is a fixed function of i, so a resumed run sees exactly the same data."""
    index = start
    while True:
        generator = torch.Generator().manual_seed(index)
        yield torch.rand(4, 3, SIZE, SIZE, generator=generator) * 2 - 1
        index += 1


def config(tmp_path, **kw) -> TrainConfig:
    values = dict(run_dir=tmp_path / "run", steps=6, log_every=2, sample_every=3,
                  checkpoint_every=3, ema_decay=0.9, precision="fp32")
    values.update(kw)
    return TrainConfig(**values)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    found = {f"{n}.{k}": v for n, m in trainer.networks.items() for k, v in m.state_dict().items()}
    found.update({f"ema.{k}": v for k, v in trainer.ema.copies["generator"].state_dict().items()})
    return found


def test_fit_logs_samples_checkpoints_and_exports(tmp_path, capsys):
    trainer = Trainer(TinyGan(), data_from, config(tmp_path))
    result = trainer.fit()
    assert (result.steps, result.steps_this_run, result.stop_reason) == (6, 6, "steps")
    assert set(result.losses) == {"d", "g"} and result.images_per_second > 0
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert {"d", "g", "lr_gen", "lr_disc", "it_s", "time", "images"} <= set(records[-1])
    assert records[-1]["images"] == 24
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000003.png", "step_000006.png"]
    assert (run / "checkpoints" / checkpoint.LATEST).exists()
    assert (run / "checkpoints" / checkpoint.PREVIOUS).exists()
    assert "step 6/6" in capsys.readouterr().err

    path = trainer.export(tmp_path / "tiny.safetensors", task="generate", card={"data": "noise"})
    loaded = load_model(path, "generate")
    card = loaded.info.card
    assert card["steps"] == 6 and card["precision"] == "fp32" and card["data"] == "noise"
    assert card["hardware"] and card["ema_decay"] == 0.9
    ema = trainer.ema.copies["generator"].state_dict()
    for key, value in loaded.network.state_dict().items():
        torch.testing.assert_close(value, ema[key].half().float())


class ScoredGan(TinyGan):
    """Validation scores from a script, so the best step is known in advance."""

    def __init__(self, scores):
        super().__init__()
        self.scores = list(scores)
        self.modes = []

    def validate(self, networks):
        self.modes.append(networks["discriminator"].training)
        return self.scores.pop(0)


def test_validation_exports_the_best_step_and_survives_resume(tmp_path):
    module = ScoredGan([4.0, 3.0, 1.0, float("nan"), 5.0])  # steps 0, 2, 4, 6 and the last, 7
    trainer = Trainer(module, data_from, config(tmp_path, steps=7, validate_every=2))
    trainer.fit()
    assert trainer.best["step"] == 4 and trainer.best["score"] == 1.0
    assert module.modes == [False] * 5  # scored in eval mode...
    assert trainer.networks["discriminator"].training  # ...and put back in training mode
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines]
    assert [r["validation"] for r in logged if "validation" in r] == [4.0, 3.0, 1.0, 5.0]

    path = trainer.export(tmp_path / "best.safetensors", task="generate")
    loaded = load_model(path, "generate")
    assert loaded.info.card["selected_step"] == 4 and loaded.info.card["validation_score"] == 1.0
    best = trainer.best["networks"]["generator"]
    last = trainer.ema.copies["generator"].state_dict()
    for key, value in loaded.network.state_dict().items():
        torch.testing.assert_close(value, best[key].half().float())
    assert any(not torch.equal(best[k], last[k]) for k in best)

    more = config(tmp_path, steps=9, validate_every=2, resume=True)
    resumed = Trainer(ScoredGan([0.5, 6.0]), data_from, more)  # steps 8 and 9
    assert resumed.best["step"] == 4 and resumed.best["score"] == 1.0
    resumed.fit()
    assert resumed.best["step"] == 8 and resumed.best["score"] == 0.5
    spent = ScoredGan([])  # budget already spent: refused before anything is scored again
    with pytest.raises(ArtganError, match=r"--steps budget \(9\) was already reached"):
        Trainer(spent, data_from, more).fit()
    assert spent.modes == []
    no_validation = Trainer(TinyGan(), data_from, config(tmp_path, steps=10, resume=True))
    assert no_validation.best is None  # a run that stops validating exports its last step


def test_modules_that_do_not_validate_export_the_last_step(tmp_path):
    trainer = Trainer(TinyGan(), data_from, config(tmp_path, validate_every=2))
    trainer.fit()
    assert trainer.best is None
    card = load_model(trainer.export(tmp_path / "m.safetensors", task="generate"), "generate")
    assert "selected_step" not in card.info.card


def test_resume_continues_exactly(tmp_path):
    straight = Trainer(TinyGan(), data_from, config(tmp_path / "a", steps=8, checkpoint_every=4))
    straight.fit()
    first = Trainer(TinyGan(), data_from, config(tmp_path / "b", steps=4, checkpoint_every=4))
    assert first.fit().steps == 4
    resumed = Trainer(
        TinyGan(), data_from, config(tmp_path / "b", steps=8, checkpoint_every=4, resume=True)
    )
    assert resumed.step == 4
    result = resumed.fit()
    assert (result.steps, result.steps_this_run) == (8, 4)
    expected, got = weights(straight), weights(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6, msg=key)
    torch.testing.assert_close(resumed.fixed, straight.fixed, rtol=0, atol=0)


def test_resume_from_a_checkpoint_without_rng_is_one_clear_error(tmp_path, monkeypatch):
    first = Trainer(TinyGan(), data_from, config(tmp_path, steps=2))
    first.fit()
    state = checkpoint.load(first.checkpoint_dir)
    del state["rng"]
    monkeypatch.setattr(checkpoint, "load", lambda directory: state)
    with pytest.raises(ArtganError, match="does not fit this task's networks or options: "
                                          "it has no 'rng'"):
        Trainer(TinyGan(), data_from, config(tmp_path, steps=4, resume=True))


def test_existing_run_needs_resume(tmp_path):
    Trainer(TinyGan(), data_from, config(tmp_path, steps=1)).fit()
    with pytest.raises(ArtganError, match="--resume"):
        Trainer(TinyGan(), data_from, config(tmp_path, steps=2))


def test_crash_between_write_and_rename_keeps_a_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    checkpoint.save(folder, {"step": 1, "w": torch.ones(3)})
    checkpoint.save(folder, {"step": 2, "w": torch.full((3,), 2.0)})
    real_replace = os.replace

    def crash_on_publish(src, dst):
        if str(dst).endswith(checkpoint.LATEST):
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_publish)
    with pytest.raises(OSError):
        checkpoint.save(folder, {"step": 3, "w": torch.full((3,), 3.0)})
    monkeypatch.undo()
    state = checkpoint.load(folder)
    assert state["step"] == 2 and state["w"].tolist() == [2.0] * 3
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_damaged_latest_falls_back_to_previous(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    checkpoint.save(folder, {"step": 1, "nested": {"t": (torch.zeros(2), 5), 7: "int key"}})
    checkpoint.save(folder, {"step": 2})
    latest = folder / checkpoint.LATEST
    latest.write_bytes(latest.read_bytes()[:20])
    state = checkpoint.load(folder)
    assert state["step"] == 1 and state["nested"][7] == "int key"
    assert isinstance(state["nested"]["t"], tuple) and state["nested"]["t"][1] == 5
    assert "trying an older checkpoint" in capsys.readouterr().err
    (folder / checkpoint.PREVIOUS).write_bytes(b"junk")
    with pytest.raises(ArtganError, match="no readable checkpoint"):
        checkpoint.load(folder)


SAVER = """
import os, sys, time, torch
from artgan.train import checkpoint

point = sys.argv[2]
real_replace, real_save = os.replace, checkpoint.save_file
replaced = []


def stop_here():
    print("stopped", flush=True)
    time.sleep(600)  # the test kills the process here


def replace(source, target):
    replaced.append(target)
    if point == f"replace-{len(replaced)}":
        stop_here()
    real_replace(source, target)


def save_file(tensors, path, metadata):
    real_save(tensors, path, metadata=metadata)
    if point == "writing":
        with open(path, "r+b") as half:  # as if the kill came mid-write
            half.truncate(os.path.getsize(path) // 2)
        stop_here()


checkpoint.save(sys.argv[1], {"step": 1, "w": torch.full((100_000,), 1.0)})
os.replace, checkpoint.save_file = replace, save_file
checkpoint.save(sys.argv[1], {"step": 2, "w": torch.full((100_000,), 2.0)})
print("finished", flush=True)
"""


@pytest.mark.parametrize("point", ["writing", "replace-1", "replace-2"],
                         ids=["writing-the-temporary", "after-latest-became-previous",
                              "before-the-new-latest"])
def test_sigkill_while_saving_leaves_a_readable_checkpoint(tmp_path, point):
    """Killed at each step of a save (found by a hook in the saving process, not by
    timing), the folder still loads, with the state of a complete save."""
    folder = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-c", SAVER, str(folder), point],
                               stdout=subprocess.PIPE, env=env)
    assert process.stdout.readline().strip() == b"stopped"
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = checkpoint.load(folder)
    assert state["step"] == 1
    assert torch.equal(state["w"], torch.full((100_000,), 1.0))


class TerminatedGan(TinyGan):
    """Sends its own process SIGTERM during step ``at``, as ``kill`` or a scheduler would."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def training_step(self, batch, step):
        if step.index == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().training_step(batch, step)


def test_sigterm_stops_after_the_step_with_a_checkpoint(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM)
    trainer = Trainer(TerminatedGan(at=1), data_from, config(tmp_path, steps=50))
    result = trainer.fit()
    assert (result.steps, result.stop_reason) == (2, "terminated")
    assert checkpoint.load(tmp_path / "run" / "checkpoints")["step"] == 2
    assert "stopped (terminated) at step 2" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # handed back after the run
    trainer.export(tmp_path / "model.safetensors", task="generate")
    assert load_model(tmp_path / "model.safetensors", "generate").info.card["steps"] == 2


def test_non_finite_steps_are_skipped_then_stop(tmp_path, capsys):
    trainer = Trainer(TinyGan(nan_steps=frozenset({1})), data_from, config(tmp_path, steps=3))
    result = trainer.fit()
    assert result.steps == 3
    assert "non-finite loss or gradients in disc; update skipped (1/5)" in capsys.readouterr().err
    assert all(torch.isfinite(p).all() for p in trainer.networks["discriminator"].parameters())

    stuck = Trainer(
        TinyGan(nan_steps=frozenset(range(10))), data_from,
        config(tmp_path / "b", steps=10, max_bad_steps=3),
    )
    before = [p.clone() for p in stuck.networks["discriminator"].parameters()]
    closed = []
    stuck.monitor.close = lambda: closed.append(True)
    with pytest.raises(ArtganError, match="diverged: 3 steps in a row"):
        stuck.fit()
    assert closed == [True]  # a run that dies still closes its writers (TensorBoard's)
    for old, new in zip(before, stuck.networks["discriminator"].parameters(), strict=True):
        assert torch.equal(old, new)


def test_lr_schedules(tmp_path):
    assert _schedule("constant", 0.9, 0.5) == 1.0
    assert [_schedule("linear", p, 0.5) for p in (0.0, 0.5, 0.75, 1.0)] == [1, 1, 0.5, 0]
    assert _schedule("cosine", 0.5, 0.5) == pytest.approx(0.5)
    trainer = Trainer(
        TinyGan(), data_from,
        config(tmp_path, steps=4, log_every=1, lr_schedule="linear", decay_start=0.5),
    )
    trainer.fit()
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    lrs = [json.loads(line)["lr_gen"] for line in lines]
    assert lrs == pytest.approx([1e-2, 1e-2, 1e-2, 0.5e-2])


def test_minutes_budget_stops_cleanly(tmp_path):
    trainer = Trainer(TinyGan(), data_from, config(tmp_path, steps=None, minutes=0.004))
    result = trainer.fit()
    assert result.stop_reason == "time" and result.steps >= 1
    assert result.checkpoint.exists()


def test_finite_data_stops_with_reason(tmp_path):
    batches = [torch.zeros(2, 3, SIZE, SIZE)] * 3
    result = Trainer(TinyGan(), batches, config(tmp_path, steps=10)).fit()
    assert (result.steps, result.stop_reason) == (3, "data")


def test_augment_state_is_logged_and_checkpointed(tmp_path):
    cfg = config(tmp_path, steps=4, augment="translation", log_every=4)
    trainer = Trainer(TinyGan(), data_from, cfg, augment=Augment("translation", p=0.5))
    trainer.fit()
    record = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert record["aug_p"] == 0.5
    adaptive = dict(augment="translation", ada_target=0.6)
    trainer = Trainer(TinyGan(), data_from, config(tmp_path / "ada", steps=3, **adaptive))
    trainer.fit()
    resumed = Trainer(
        TinyGan(), data_from, config(tmp_path / "ada", steps=4, resume=True, **adaptive)
    )
    assert int(resumed.augment.ada_calls) == 3
    for key, value in trainer.augment.state_dict().items():
        assert torch.equal(resumed.augment.state_dict()[key], value)


def test_bf16_autocast_step_runs_on_cpu(tmp_path):
    result = Trainer(TinyGan(), data_from, config(tmp_path, steps=2, precision="bf16")).fit()
    assert result.steps == 2
    assert all(isinstance(v, float) for v in result.losses.values())


def test_precision_and_config_checks(monkeypatch):
    cpu = torch.device("cpu")
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(artgan.cpu, "has_native_bf16", lambda native=native: native)
        assert pick_precision("auto", cpu) == expected
    with pytest.raises(ArtganError, match="fp16 needs a CUDA"):
        pick_precision("fp16", cpu)
    with pytest.raises(ArtganError, match="budget"):
        TrainConfig(run_dir="x")
    with pytest.raises(ArtganError, match="precision"):
        TrainConfig(run_dir="x", steps=1, precision="fp8")


def test_shared_cli_options_build_a_config():
    seen = {}

    @click.command(params=train_options())
    @click.option("--lr", type=float, default=2e-4)
    def command(**options):
        seen["config"] = config_from_options(task="style-transfer", **options)

    result = CliRunner().invoke(command, [
        "--steps", "100", "--minutes", "2.5", "--precision", "bf16", "--ema", "0.999",
        "--lr-schedule", "linear", "--channels-last", "--ada-target", "0.6", "--seed", "3",
    ])
    assert result.exit_code == 0, result.output
    cfg = seen["config"]
    assert (cfg.steps, cfg.minutes, cfg.precision, cfg.ema_decay) == (100, 2.5, "bf16", 0.999)
    assert cfg.lr_schedule == "linear" and cfg.channels_last and cfg.seed == 3
    assert cfg.ada_target == 0.6 and cfg.augment == "color,translation,cutout"
    assert str(cfg.run_dir) == os.path.join("runs", "style-transfer") and not cfg.resume


def test_speed_after_a_resume_counts_only_this_runs_steps(tmp_path, monkeypatch):
    from artgan.train import monitor as monitor_module

    clock = iter([100.0, 110.0, 120.0])
    monkeypatch.setattr(monitor_module.time, "monotonic", lambda: next(clock))
    monitor = monitor_module.Monitor(tmp_path, total_steps=None, budget_seconds=None,
                                     stream=io.StringIO())
    monitor.resumed(4000)
    monitor.record({"loss": 1.0})
    record = monitor.log(4010, elapsed=1000.0, images=4010, extra={})
    assert record["it_s"] == 1.0  # 10 steps in 10 s, not 4010
