"""What a run reports while it trains: a progress line, a JSONL log, sample grids, TensorBoard.

Losses stay on the device between log points (summed as tensors) so logging does not
force a host sync every step. The console line is paced by the clock, not by steps: how
long a step takes depends on the hardware and the model by orders of magnitude, so a line
every so many steps is a flood on one machine and a long silence on another. It shows at
the first step of a run, then every ``PROGRESS_SECONDS`` (on a terminal, where it rewrites
itself, every ``REFRESH_SECONDS``). ``log.jsonl`` and TensorBoard get a record every
``log_every`` steps.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import torch

from artgan.atomic import atomic_path
from artgan.convert import image_grid, tensor_to_pil

PROGRESS_SECONDS = 15.0  # between console progress lines in a log file or pipe
REFRESH_SECONDS = 1.0  # between rewrites of the progress line on a terminal


class Monitor:
    """Reports for one run; a disabled monitor (non-main processes) only averages losses."""

    def __init__(
        self,
        run_dir: Path,
        *,
        total_steps: int | None,
        budget_seconds: float | None,
        enabled: bool = True,
        stream: TextIO | None = None,
    ):
        self.run_dir = run_dir
        self.total_steps = total_steps
        self.budget_seconds = budget_seconds
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._tty = self.stream.isatty()
        self._sums: dict[str, torch.Tensor | float] = {}
        self._count = 0
        now = time.monotonic()
        self._window = (0, now)  # (step, time) the log.jsonl speed is measured from
        self._shown = (0, now)  # the same, for the console line: its last one, or the start
        self._lines = 0  # console progress lines since ``begin``
        self.last: dict[str, float] = {}
        self._tensorboard = _tensorboard(run_dir) if enabled else None
        if enabled:
            run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def pending(self) -> bool:
        """Whether steps were recorded since the last log."""
        return self._count > 0

    def record(self, losses: dict[str, torch.Tensor | float]) -> None:
        """Add one step's losses to the running averages."""
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float().mean()
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1

    def log(
        self, step: int, elapsed: float, images: int, extra: dict[str, float]
    ) -> dict[str, float]:
        """Average the recorded losses, write them out and reset; returns the record."""
        now = time.monotonic()
        first, since = self._window
        rate = (step - first) / max(now - since, 1e-9)
        self._window = (step, now)
        losses = {k: float(v) / max(self._count, 1) for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        self.last = losses
        record = {"step": step, "time": round(elapsed, 3), "it_s": round(rate, 4),
                  "images": images, **extra, **losses}
        if not self.enabled:
            return record
        self._append(record)
        if self._tensorboard is not None:
            for name, value in {**extra, **losses}.items():
                self._tensorboard.add_scalar(name, value, step)
        return record

    def begin(self, step: int, text: str) -> None:
        """Say that training starts (``text``); the next ``progress`` call shows a line."""
        self._shown = (step, time.monotonic())
        self._lines = 0
        self.note(text)

    def progress(self, step: int, elapsed: float, *, final: bool = False) -> None:
        """The console progress line, when one is due: at the first step after ``begin``,
        then every ``PROGRESS_SECONDS`` (``REFRESH_SECONDS`` on a terminal). ``final``
        shows the line now (unless this step's is out already) and keeps it on a terminal.

        It averages the losses recorded since the last log point (or shows the last log
        point's), and only reads them from the device when a line is due.
        """
        if not self.enabled:
            return
        now = time.monotonic()
        first, since = self._shown
        if final:
            if self._lines and step == first:
                return
        elif self._lines and now - since < (REFRESH_SECONDS if self._tty else PROGRESS_SECONDS):
            return
        rate = (step - first) / max(now - since, 1e-9)
        self._shown = (step, now)
        self._lines += 1
        if self._count:
            losses = {k: float(v) / self._count for k, v in self._sums.items()}
        else:
            losses = self.last
        shown = "  ".join(f"{k}={v:.4g}" for k, v in losses.items())
        total = f"/{self.total_steps}" if self.total_steps else ""
        speed = f"{rate:.2f} it/s" if rate >= 1 or rate == 0 else f"{1 / rate:.2f} s/it"
        eta = self._eta(step, elapsed, rate)
        self._line(f"step {step}{total}  {speed}  ETA {eta}  {shown}".rstrip(), final=final)

    def validated(self, step: int, score: float, *, best: bool) -> None:
        """Log a validation score (lower is better) to log.jsonl, TensorBoard and the console."""
        if not self.enabled:
            return
        self._append({"step": step, "validation": round(score, 6)})
        if self._tensorboard is not None:
            self._tensorboard.add_scalar("validation", score, step)
        self.note(f"validation at step {step}: {score:.4g}" + ("  (best so far)" if best else ""))

    def _append(self, record: dict[str, Any]) -> None:
        """One JSON line in ``log.jsonl``."""
        with open(self.run_dir / "log.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def resumed(self, step: int) -> None:
        """Say so, and measure it/s from ``step``: the steps before it ran in an earlier run."""
        now = time.monotonic()
        self._window = (step, now)
        self._shown = (step, now)
        self.note(f"resumed from step {step}")

    def note(self, text: str) -> None:
        """A message on its own line (warnings, final summary)."""
        if self.enabled:
            self._line(text, final=True)

    def save_grid(self, images: torch.Tensor, step: int) -> Path | None:
        """Write ``images`` (in [-1, 1]) as ``samples/step_NNNNNN.png``, atomically."""
        if not self.enabled:
            return None
        images = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
        grid = image_grid(images)
        path = self.run_dir / "samples" / f"step_{step:06d}.png"
        with atomic_path(path) as temporary:
            tensor_to_pil(grid).save(temporary, format="PNG")
        if self._tensorboard is not None:
            self._tensorboard.add_image("samples", grid, step)
        return path

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()

    def _eta(self, step: int, elapsed: float, rate: float) -> str:
        left = []
        if self.total_steps and rate > 0:
            left.append((self.total_steps - step) / rate)
        if self.budget_seconds:
            left.append(self.budget_seconds - elapsed)
        if not left:
            return "?"
        seconds = max(0, int(min(left)))
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"

    def _line(self, text: str, *, final: bool) -> None:
        """Progress lines overwrite each other on a terminal; elsewhere each is kept."""
        if self._tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _tensorboard(run_dir: Path) -> Any:
    """A SummaryWriter when the tensorboard package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
