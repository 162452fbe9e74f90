"""The built-in ``generate`` task: new pictures in the style of a small collection.

``artgan train generate --data paintings/ --name mine`` trains a FastGAN-style generator
(see ``model``) on as few as ~100 pictures; ``artgan generate --model mine -n 16`` samples
from it. In Python, ``generate`` and ``interpolate`` return PIL images.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

import artgan

from .model import ARCHITECTURE, FastGANGenerator
from .task import GenerateTask

TASK = GenerateTask()


def generate(n: int = 4, model: str | None = None, seed: int = 0, truncation: float = 1.0,
             device: str = "cpu") -> list[Image.Image]:
    """``n`` new pictures from ``model`` (name or path; default ``monet``).

    The same seed gives the same pictures; picture ``i``'s latent does not depend on ``n``.
    """
    return TASK.sample(n, model, seed, truncation, device)


def interpolate(model: str | None = None, seeds: Sequence[int] = (0, 1, 2), frames: int = 48,
                truncation: float = 1.0, device: str = "cpu") -> list[Image.Image]:
    """``frames`` pictures walking smoothly through one latent per seed and back to the first."""
    return TASK.interpolate(model, seeds, frames, truncation, device)


@artgan.hookimpl
def register_tasks(register):
    register(TASK)


@artgan.hookimpl
def register_architectures(register):
    register(ARCHITECTURE, FastGANGenerator)


__all__ = ["TASK", "GenerateTask", "generate", "interpolate"]
