"""The settings every training run shares, whatever the task.

One dataclass, filled from the shared CLI options (``artgan.train.options``) or by hand,
so that tasks never re-declare budgets, precision or checkpointing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from artgan.errors import ArtganError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "linear", "cosine")
SEED_LIMIT = 2**63
"""Seeds are ``0 <= seed < SEED_LIMIT``: torch refuses seeds over 64 bits (this leaves room
for the per-rank and per-step offsets the trainer adds), and a negative seed would alias a
positive one (torch reads -1 as 2**64 - 1)."""


@dataclass
class TrainConfig:
    """How to run a training loop; ``steps`` and/or ``minutes`` bound it (total, across resumes:
    resuming a run whose budget is spent is refused, so give a larger one to train on).

    ``precision="auto"`` means bf16 autocast on CUDA and on CPUs with native bf16
    (AMX / AVX512-BF16), else fp32; ``fp16`` is CUDA-only and uses a gradient scaler.
    ``lr_schedule="linear"`` keeps the rate constant until ``decay_start`` of the budget,
    then decays it linearly to 0 (CycleGAN); ``cosine`` anneals from the start. Schedules
    follow the steps budget, or the clock when only ``minutes`` is set.
    ``augment`` is an ``Augment.from_option`` text (e.g. ``"color,translation,cutout"``,
    ``"none"``); ``validate_every`` scores the model on the task's held-out data at
    the start and that often after, and exports the best-scoring weights;
    ``ada_target`` turns on adaptive probability. ``log_every`` paces ``log.jsonl`` and
    TensorBoard; the console progress line goes by the clock. ``data_license`` is not a training
    setting but a fact about the data that only the user knows; it goes into the exported
    model's card.
    """

    run_dir: Path
    steps: int | None = None
    minutes: float | None = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
    compile: bool = False
    ema_decay: float | None = None
    lr_schedule: str = "constant"
    decay_start: float = 0.5
    checkpoint_every: int = 500
    sample_every: int = 500
    validate_every: int | None = None
    log_every: int = 25
    seed: int = 0
    resume: bool = False
    max_bad_steps: int = 5
    augment: str | None = None
    ada_target: float | None = None
    data_license: str | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        if self.steps is None and self.minutes is None:
            raise ArtganError("training needs a budget: set --steps and/or --minutes")
        if self.steps is not None and self.steps < 1:
            raise ArtganError(f"--steps must be at least 1, got {self.steps}")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ArtganError(f"--minutes must be a positive finite number, got {self.minutes}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ArtganError(f"--seed must be from 0 to {SEED_LIMIT - 1}, got {self.seed}")
        if self.precision not in PRECISIONS:
            raise ArtganError(f"unknown precision {self.precision!r}; use one of {PRECISIONS}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ArtganError(
                f"unknown lr schedule {self.lr_schedule!r}; use one of {LR_SCHEDULES}"
            )
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ArtganError(f"--ema must be between 0 and 1, got {self.ema_decay}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ArtganError(f"decay_start must be between 0 and 1, got {self.decay_start}")
        if self.validate_every is not None and self.validate_every < 1:
            raise ArtganError(f"--validate-every must be at least 1, got {self.validate_every}")
        for name in ("checkpoint_every", "sample_every", "log_every", "max_bad_steps"):
            if getattr(self, name) < 1:
                raise ArtganError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored in checkpoints."""
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        return data

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
