"""The Trainer: the one training loop behind every task.

It takes a task's ``GanModule``, data and a ``TrainConfig`` and does everything that is
not the GAN algorithm itself: device and precision, seeding, LR schedules, EMA, budgets
in steps and minutes, the NaN/Inf guard, checkpoints and exact resume, logging and
sample grids, validation with best-checkpoint selection, multi-process training, and the
export to the model store.
"""

from __future__ import annotations

import copy
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from artgan.augment import Augment
from artgan.data import infinite
from artgan.errors import ArtganError
from artgan.store import save_model
from artgan.train import checkpoint, distributed
from artgan.train.config import TrainConfig
from artgan.train.ema import EMA
from artgan.train.hardware import hardware_name, pick_device, pick_precision
from artgan.train.module import GanModule
from artgan.train.monitor import Monitor
from artgan.train.step import StepContext


@dataclass
class TrainResult:
    """What ``fit`` did: ``stop_reason`` is "steps", "time", "data", "interrupted" (Ctrl-C)
    or "terminated" (SIGTERM)."""

    steps: int
    steps_this_run: int
    seconds: float
    images_per_second: float
    losses: dict[str, float] = field(default_factory=dict)
    stop_reason: str = "steps"
    checkpoint: Path | None = None


class Trainer:
    """Runs a ``GanModule`` on ``data`` under ``config``.

    ``data`` is an iterable of batches (a DataLoader is cycled epoch after epoch, telling a
    distributed sampler the epoch; any other iterable is used once, and training stops when
    it ends), or a callable ``data(start) -> iterable`` called when ``fit`` starts, after
    the process group exists, with ``start`` the number of batches already consumed (0, or
    the resumed step): use it to build ``artgan.data.training_loader(..., start=start)``,
    which continues the data exactly where a resumed run stopped. ``augment`` overrides
    ``config.augment``.
    """

    def __init__(
        self,
        module: GanModule,
        data: Iterable[Any] | Callable[[int], Iterable[Any]],
        config: TrainConfig,
        *,
        augment: Augment | None = None,
    ):
        self.module = module
        self.config = config
        self._data = data
        env = distributed.from_env()
        self.device = pick_device(config.device, env.local_rank)
        self.world = distributed.setup(self.device)
        self.precision = pick_precision(config.precision, self.device)
        self.checkpoint_dir = config.run_dir / "checkpoints"
        if self.world.main and not config.resume and checkpoint.exists(self.checkpoint_dir):
            raise ArtganError(
                f"{config.run_dir} already holds a training run: pass --resume to continue it "
                "or choose another --run-dir"
            )
        _seed(config.seed)
        self.networks = self._build_networks()
        self.optimizers = module.optimizers(self.networks)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.ema = (
            EMA(self.networks, tuple(module.ema), config.ema_decay)
            if config.ema_decay and module.ema else None
        )
        if config.compile:
            for network in self.networks.values():
                network.compile()
        if augment is None and config.augment:
            augment = Augment.from_option(config.augment, config.ada_target)
        self.augment = augment.to(self.device) if augment is not None else None
        self.context = StepContext(
            networks=self.networks, optimizers=self.optimizers, device=self.device,
            precision=self.precision, augment=self.augment, world=self.world,
        )
        budget = config.minutes * 60 if config.minutes else None
        self.monitor = Monitor(
            config.run_dir, total_steps=config.steps, budget_seconds=budget,
            enabled=self.world.main,
        )
        self.step = 0
        self.images = 0
        self.fixed: Any = None
        # {"step", "score", "networks": state dicts}: the best-validated inference weights.
        self.best: dict[str, Any] | None = None
        self._elapsed_before = 0.0
        self._started = time.monotonic()
        self._resumed = False
        self._sigterm = _SigtermStop()
        if config.resume:
            state = checkpoint.load(self.checkpoint_dir)
            if state is None:
                self.monitor.note(f"no checkpoint in {self.checkpoint_dir}: starting afresh")
            else:
                self._restore(state)
        if self.world.rank:
            # Each process draws its own noise; rank 0 keeps the single-process stream.
            _seed(config.seed + 1_000_003 * self.world.rank + self.step)

    def fit(self) -> TrainResult:
        """Train until the budget (or the data) is spent; checkpoint at the end.

        Budgets count the whole run, across resumes: a resumed run whose budget the earlier
        runs already spent raises ArtganError before it does anything (rather than taking
        no step and exporting the same model again).
        """
        config = self.config
        if self._resumed:
            self._refuse_spent_budget()
        self._started = time.monotonic()
        first_step, first_images = self.step, self.images
        self.monitor.begin(self.step, self._start_text())
        try:  # a crash still closes the monitor's writers (TensorBoard's event file)
            with self._sigterm:  # SIGTERM stops the run as Ctrl-C does
                batches = self._batches(self.step)
                if config.validate_every and self.step == 0:
                    # the starting point is a candidate too (it matters when fine-tuning)
                    self.validate()
                try:
                    stop_reason = self._train_until_stopped(batches)
                except KeyboardInterrupt:
                    stop_reason = "interrupted"
                if self.monitor.pending:
                    self._log()
                if self.step > first_step:
                    self.monitor.progress(self.step, self.elapsed(), final=True)
                if self.step % config.sample_every:
                    self._sample()
                last_unscored = bool(config.validate_every
                                     and self.step % config.validate_every)
                if last_unscored and self.step > first_step:
                    self.validate()  # the last step is a candidate too, unless none was taken
                # always, even just after a periodic one: the time spent since then
                # (sampling, validation) counts against a --minutes budget on resume
                saved = self.save_checkpoint()
                seconds = time.monotonic() - self._started
                images_per_second = (self.images - first_images) / max(seconds, 1e-9)
                self.monitor.note(
                    f"stopped ({stop_reason}) at step {self.step} after {seconds:.1f} s, "
                    f"{images_per_second:.2f} images/s; checkpoint {saved}"
                )
        finally:
            self.monitor.close()
        distributed.barrier()
        return TrainResult(
            steps=self.step, steps_this_run=self.step - first_step, seconds=seconds,
            images_per_second=images_per_second, losses=dict(self.monitor.last),
            stop_reason=stop_reason, checkpoint=saved,
        )

    def _train_until_stopped(self, batches: Iterator[Any]) -> str:
        """Take steps on ``batches``, logging, sampling, validating and checkpointing on
        schedule, until ``_should_stop`` names a reason or the data runs out ("data")."""
        config = self.config
        bad_in_a_row = 0
        while True:
            stop_reason = self._should_stop()
            if stop_reason:
                return stop_reason
            try:
                batch = self._to_device(next(batches))
            except StopIteration:
                return "data"
            if self.fixed is None:
                self.fixed = _detached(self.module.fixed_inputs(batch))
            self._set_learning_rates()
            self.context.index = self.step
            self.context.skipped.clear()
            losses = self.module.training_step(batch, self.context)
            self.step += 1
            self.images += _batch_size(batch) * self.world.size
            if self.context.skipped:
                bad_in_a_row += 1
                self._bad_step(bad_in_a_row)
            else:
                bad_in_a_row = 0
            if self.ema is not None:
                self.ema.update()
            if self.world.size > 1 and self.augment is not None:
                distributed.average_buffers(self.augment)
            self.monitor.record(losses)
            if self.step % config.log_every == 0:
                self._log()
            self.monitor.progress(self.step, self.elapsed())
            if self.step % config.sample_every == 0:
                self._sample()
            if config.validate_every and self.step % config.validate_every == 0:
                self.validate()
            if self.step % config.checkpoint_every == 0:
                self.save_checkpoint()

    def export(
        self, path: str | os.PathLike, *, task: str, card: dict[str, Any] | None = None,
        half: bool = True,
    ) -> Path:
        """Save the inference model (EMA weights where kept) in the model store format.

        After validation, the best-scoring weights are saved rather than the last ones.
        The card gets the training facts (steps, time, hardware, precision, processes,
        seed, EMA, data licence, and ``exported_step``: the step whose weights these are,
        the best-validated one or the last) unless ``card`` sets them, and the console
        says which step was exported. Only the main process writes.
        """
        network, architecture, arch_config = self.module.export(self.selected_networks())
        facts = {
            "steps": self.step,
            "train_seconds": round(self.elapsed(), 1),
            "hardware": hardware_name(self.device),
            "precision": self.precision,
            "processes": self.world.size,
            "seed": self.config.seed,
            "ema_decay": self.config.ema_decay if self.ema is not None else None,
            "data_license": self.config.data_license,
        }
        exported = self.step if self.best is None else int(self.best["step"])
        facts["exported_step"] = exported
        if self.best is not None:
            facts["selected_step"] = exported
            facts["validation_score"] = round(self.best["score"], 4)
        path = Path(path)
        if self.world.main:
            save_model(
                network, path, task=task, architecture=architecture, config=arch_config,
                card={**facts, **(card or {})}, half=half,
            )
            if self.best is None:
                self.monitor.note(f"exported step {exported} of {self.step} (the last step)")
            else:
                self.monitor.note(f"exported step {exported} of {self.step} (best validation "
                                  f"score {self.best['score']:.4g})")
        distributed.barrier()
        return path

    def inference_networks(self) -> dict[str, nn.Module]:
        """The networks with their EMA copies swapped in where kept."""
        networks = dict(self.networks)
        if self.ema is not None:
            networks.update(self.ema.copies)
        return networks

    def selected_networks(self) -> dict[str, nn.Module]:
        """The inference networks, with the best-validated weights when there are any."""
        networks = self.inference_networks()
        if self.best is None:
            return networks
        chosen = {}
        for name, network in networks.items():
            chosen[name] = copy.deepcopy(network)
            chosen[name].load_state_dict(self.best["networks"][name])
        return chosen

    def validate(self) -> float | None:
        """Score the inference networks with ``module.validate``; remember the best weights.

        Runs on the main process only (the score is the module's, on its held-out data),
        in full precision; the best weights are kept on the CPU. Returns the score, or None
        when the module does not validate.
        """
        if not self.world.main:
            return None
        networks = self.inference_networks()
        with _eval_mode(networks), torch.no_grad():
            score = self.module.validate(networks)
        if score is None:
            return None
        score = float(score)
        if not math.isfinite(score):
            self.monitor.note(f"warning: step {self.step}: validation score {score}; ignored")
            return score
        better = self.best is None or score < self.best["score"]
        if better:
            self.best = {
                "step": self.step,
                "score": score,
                "networks": {
                    name: {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
                    for name, net in networks.items()
                },
            }
        self.monitor.validated(self.step, score, best=better)
        return score

    def elapsed(self) -> float:
        """Training wall time in seconds, across resumes."""
        return self._elapsed_before + time.monotonic() - self._started

    def save_checkpoint(self) -> Path:
        """Write the run state now (main process only); returns the latest checkpoint path."""
        path = self.checkpoint_dir / checkpoint.LATEST
        if not self.world.main:
            return path
        state = {
            "step": self.step,
            "images": self.images,
            "elapsed": self.elapsed(),
            "config": self.config.to_dict(),
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scalers": {name: s.state_dict() for name, s in self.context.scalers.items()},
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "augment": self.augment.state_dict() if self.augment is not None else None,
            "rng": checkpoint.rng_state(),
            "module": self.module.state_dict(),
            "shape": self.module.shape_options(),
            "fixed": self.fixed,
            "best": self.best,
        }
        return checkpoint.save(self.checkpoint_dir, state)

    def _build_networks(self) -> dict[str, nn.Module]:
        networks = self.module.networks()
        if not networks or not all(isinstance(n, nn.Module) for n in networks.values()):
            raise TypeError("GanModule.networks() must return a non-empty dict of nn.Module")
        for network in networks.values():
            network.to(self.device)
            if self.config.channels_last:
                network.to(memory_format=torch.channels_last)
            network.train()
        if self.world.size > 1:
            distributed.broadcast_state(networks.values())
        return networks

    def _restore(self, state: dict[str, Any]) -> None:
        self._check_shape(state)
        try:
            for name, network in self.networks.items():
                network.load_state_dict(state["networks"][name])
            for name, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][name])
            for name, scaler in self.context.scalers.items():
                if name in state["scalers"]:
                    scaler.load_state_dict(state["scalers"][name])
            if self.ema is not None and state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            if self.augment is not None and state["augment"] is not None:
                self.augment.load_state_dict(state["augment"])
            self.module.load_state_dict(state.get("module") or {})
            checkpoint.set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise ArtganError(
                f"the checkpoint in {self.checkpoint_dir} does not fit this task's networks "
                f"or options: {_first_line(exc)}"
            ) from None
        self.step = int(state["step"])
        self.images = int(state["images"])
        self._elapsed_before = float(state["elapsed"])
        self.fixed = self._to_device(state["fixed"])
        # A best step only counts for a run that goes on validating (on the same data).
        self.best = state.get("best") if self.config.validate_every else None
        self._resumed = True
        self.monitor.resumed(self.step)

    def _check_shape(self, state: dict[str, Any]) -> None:
        """One line naming the options that differ from the checkpoint's, rather than torch's
        many-line state-dict error: the options the module names in ``shape_options``, else
        (older checkpoints, modules that name none) the first tensor that does not fit."""
        saved, own = state.get("shape") or {}, self.module.shape_options()
        changed = [(name, saved[name], value) for name, value in own.items()
                   if name in saved and saved[name] != value]
        if changed:
            if len(changed) == 1:
                name, old, new = changed[0]
                now = _spelled(name, new) if isinstance(new, bool) else str(new)
                differences = f"{_spelled(name, old)}, not {now}"
            else:
                differences = ", ".join(f"{_spelled(name, old)} (not {_spelled(name, new)})"
                                        for name, old, new in changed)
            raise ArtganError(
                f"the checkpoint in {self.checkpoint_dir} was trained with {differences}; "
                "resume with the same shape options or start a new --name (or --run-dir)"
            )
        misfit = _misfit(state.get("networks"), self.networks)
        if misfit:
            raise ArtganError(
                f"the checkpoint in {self.checkpoint_dir} does not fit this task's networks "
                f"or options: {misfit}; resume with the options the run was started with or "
                "start a new --name (or --run-dir)"
            )

    def _refuse_spent_budget(self) -> None:
        """Raise ArtganError when the earlier runs already spent the budget."""
        reason = self._should_stop()
        across = "it counts the whole run, across resumes; nothing was trained or exported"
        if reason == "steps":
            raise ArtganError(
                f"the --steps budget ({self.config.steps}) was already reached by the earlier "
                f"run (step {self.step}); give a larger --steps to train on ({across})"
            )
        if reason == "time":
            raise ArtganError(
                f"the --minutes budget ({self.config.minutes:g}) was already spent by the "
                f"earlier run ({self._elapsed_before / 60:.3g} minutes, step {self.step}); "
                f"give a larger --minutes to train on ({across})"
            )

    def _start_text(self) -> str:
        """The first line of ``fit``: where it trains and until when."""
        until = []
        if self.config.steps is not None:
            until.append(f"step {self.config.steps}")
        if self.config.minutes is not None:
            minutes = self.config.minutes
            spent = self._elapsed_before / 60
            until.append(f"{minutes:g} minute{'' if minutes == 1 else 's'} of training"
                         + (f" ({spent:.3g} spent before)" if spent else ""))
        processes = f" x {self.world.size} processes" if self.world.size > 1 else ""
        return (f"training on {hardware_name(self.device)}{processes} in {self.precision} "
                f"from step {self.step} until {' or '.join(until)}")

    def _batches(self, start: int) -> Iterator[Any]:
        source = self._data
        if callable(source) and not isinstance(source, Iterable):
            source = source(start)
        if isinstance(source, DataLoader):
            return infinite(source)
        return iter(source)

    def _should_stop(self) -> str:
        """"steps" or "time" when a budget is spent, "terminated" after a SIGTERM, else "";
        every process agrees."""
        if self.config.steps is not None and self.step >= self.config.steps:
            return "steps"
        over = self.config.minutes is not None and self.elapsed() >= self.config.minutes * 60
        if not distributed.agree(self._sigterm.received or over, self.device):  # one exchange
            return ""
        return "terminated" if self._sigterm.received else "time"

    def _progress(self) -> float:
        """Fraction of the budget spent: by steps, by time, or whichever is further along."""
        parts = []
        if self.config.steps:
            parts.append(self.step / self.config.steps)
        if self.config.minutes:
            parts.append(self.elapsed() / (self.config.minutes * 60))
        return min(max(parts), 1.0)

    def _set_learning_rates(self) -> None:
        factor = _schedule(self.config.lr_schedule, self._progress(), self.config.decay_start)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _bad_step(self, in_a_row: int) -> None:
        where = ", ".join(self.context.skipped)
        limit = self.config.max_bad_steps
        if in_a_row >= limit:
            raise ArtganError(
                f"training diverged: {in_a_row} steps in a row had non-finite losses or "
                f"gradients (step {self.step}, {where}); lower the learning rate or use "
                f"--precision fp32 (last checkpoint: {self.checkpoint_dir})"
            )
        self.monitor.note(
            f"warning: step {self.step}: non-finite loss or gradients in {where}; "
            f"update skipped ({in_a_row}/{limit})"
        )

    def _log(self) -> None:
        extra = {
            f"lr_{name}": float(opt.param_groups[0]["lr"]) for name, opt in self.optimizers.items()
        }
        if self.augment is not None:
            extra["aug_p"] = self.augment.p
        self.monitor.log(self.step, self.elapsed(), self.images, extra)

    def _sample(self) -> None:
        if self.fixed is None or not self.world.main:
            return
        networks = self.inference_networks()
        with _eval_mode(networks), torch.no_grad(), self.context.autocast():
            images = self.module.sample(networks, self.fixed)
        self.monitor.save_grid(images, self.step)

    def _to_device(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            value = value.to(self.device, non_blocking=True)
            if self.config.channels_last and value.dim() == 4:
                value = value.contiguous(memory_format=torch.channels_last)
            return value
        if isinstance(value, dict):
            return {k: self._to_device(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._to_device(v) for v in value)
        return value


@contextmanager
def _eval_mode(networks: dict[str, nn.Module]) -> Iterator[None]:
    """Put ``networks`` in eval mode for the block, then back in the mode each was in."""
    modes = {name: net.training for name, net in networks.items()}
    try:
        for network in networks.values():
            network.eval()
        yield
    finally:
        for name, network in networks.items():
            network.train(modes[name])


def _schedule(name: str, progress: float, decay_start: float) -> float:
    """LR multiplier at ``progress`` (0..1) of the budget."""
    if name == "linear":
        if progress <= decay_start or decay_start >= 1.0:
            return 1.0
        return max(0.0, (1.0 - progress) / (1.0 - decay_start))
    if name == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def _spelled(option: str, value: Any) -> str:
    """``--width 16``; a flag as it is given: ``--ema`` or ``--no-ema``."""
    if isinstance(value, bool):
        return option if value else "--no-" + option.removeprefix("--")
    return f"{option} {value}"


def _misfit(saved: Any, networks: dict[str, nn.Module]) -> str:
    """What in the checkpoint's network weights ``saved`` does not fit ``networks``, in a
    few words ("its generator's 0.weight is 192x8, this run's 96x8"), or ""."""
    if not isinstance(saved, dict):
        return ""  # the general check in ``_restore`` names what is missing

    def size(tensor: Any) -> str:
        shape = getattr(tensor, "shape", None)
        return "x".join(map(str, shape)) if shape is not None and len(shape) else "a scalar"

    for name, network in networks.items():
        weights = saved.get(name)
        if not isinstance(weights, dict):
            return f"it has no {name!r} network"
        own = network.state_dict()
        for key, value in own.items():
            if key not in weights:
                return f"its {name} has no {key!r}"
            if tuple(getattr(weights[key], "shape", ())) != tuple(value.shape):
                return f"its {name}'s {key} is {size(weights[key])}, this run's {size(value)}"
        extra = sorted(set(weights) - set(own))
        if extra:
            return f"its {name} has {extra[0]!r}, which this run's has not"
    return ""


def _first_line(exc: BaseException) -> str:
    """An exception's first line; a bare KeyError names the missing key."""
    if isinstance(exc, KeyError):
        return f"it has no {exc.args[0]!r}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _detached(value: Any) -> Any:
    """A private, gradient-free copy of the fixed sample inputs."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detached(v) for v in value)
    return value


def _batch_size(batch: Any) -> int:
    """Images in a batch: the first dimension of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return batch.shape[0] if batch.dim() else 1
    values = batch.values() if isinstance(batch, dict) else batch
    if isinstance(values, (list, tuple)) or isinstance(batch, dict):
        for value in values:
            size = _batch_size(value)
            if size:
                return size
    return 0


class _SigtermStop:
    """While entered, SIGTERM asks the run to stop after its current step, as Ctrl-C does,
    rather than killing it: ``kill``, ``docker stop``, systemd and batch schedulers send it
    before they kill, and a run stopped that way checkpoints and exports its model instead
    of losing the steps since its last checkpoint. Only the main thread can take signals;
    elsewhere it does nothing."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None

    def __enter__(self) -> _SigtermStop:
        self.received = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._receive)
        return self

    def _receive(self, signum: int, frame: Any) -> None:
        self.received = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
