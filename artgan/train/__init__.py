"""The shared adversarial training engine every task trains through.

A task subclasses ``GanModule`` (networks, optimizers, one training step, export) and
hands it to ``Trainer`` with its data and a ``TrainConfig``; the Trainer owns the loop:
device, precision, EMA, LR schedules, budgets, NaN guard, checkpoints and resume,
logging and sample grids, and multi-process training under ``torchrun``.
"""

from artgan.train.config import TrainConfig
from artgan.train.module import AnchoredModule, GanModule
from artgan.train.step import StepContext
from artgan.train.trainer import Trainer, TrainResult

__all__ = ["AnchoredModule", "GanModule", "StepContext", "TrainConfig", "TrainResult", "Trainer"]
