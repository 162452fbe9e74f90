"""An example third-party artgan plugin: a ``posterize`` task that needs no model.

Install it with ``pip install examples/artgan-plugin-example`` and it appears in
``artgan tasks``; run it with ``artgan run posterize --levels 4 photo.jpg``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

import artgan

if TYPE_CHECKING:  # no torch import at run time: artgan loads every plugin on each command
    import torch


class PosterizePipeline(artgan.Pipeline):
    """Quantise each colour channel to a few levels, like a screen print."""

    def __init__(self, levels: int):
        if not 2 <= levels <= 256:
            raise artgan.ArtganError(f"--levels must be between 2 and 256, not {levels}")
        self.levels = levels

    def process(self, batch: torch.Tensor) -> torch.Tensor:
        steps = self.levels - 1
        return (batch * steps).round() / steps


class PosterizeTask(artgan.Task):
    name = "posterize"
    description = "Reduce each colour channel to a few flat levels (no model needed)."

    def run_options(self):
        return super().run_options() + [
            click.Option(["--levels"], type=int, default=4, show_default=True,
                         help="Levels per colour channel."),
        ]

    def load(self, model=None, levels: int = 4):
        """``levels``: the one option (``artgan.load("posterize", levels=3)``); artgan
        refuses any other keyword with a one-line error."""
        return PosterizePipeline(levels)


@artgan.hookimpl
def register_tasks(register):
    register(PosterizeTask())
