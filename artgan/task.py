"""The ``Task`` interface that every plugin implements, and the ``Pipeline`` it returns.

A task names itself, describes itself in one line, declares its CLI options (click
parameters, so ``artgan run TASK --help`` shows them), loads a model into a ``Pipeline``
and optionally trains one. The CLI, the Python API and the batch runner only talk to
tasks through this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import torch

from artgan.convert import to_batch
from artgan.errors import ArtganError


class Pipeline:
    """A model ready to run on images; callable on PIL images, numpy arrays or tensors.

    Subclasses implement ``process`` on a float batch (N, 3, H, W) in [0, 1]; ``__call__``
    converts whatever the user passed and returns the same kind.
    """

    device: torch.device = torch.device("cpu")

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        batch, restore = to_batch(image)
        with torch.inference_mode():
            result = self.process(batch.to(self.device), **kwargs)
        return restore(result.float().cpu())

    def process(self, batch: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError


def compare_option() -> click.Option:
    """``--compare``: before | after pictures, for image-to-image tasks."""
    return click.Option(
        ["--compare"], is_flag=True,
        help="Write each input and its result side by side (before | after).",
    )


class Task:
    """Base class for tasks; a plugin registers instances through ``register_tasks``."""

    name: str = ""
    description: str = ""
    default_model: str | None = None

    def run_options(self) -> list[click.Parameter]:
        """Parameters of ``artgan run NAME``; the default takes input images and ``--out``."""
        return [
            click.Argument(["inputs"], nargs=-1, required=True),
            click.Option(
                ["--out", "-o"],
                help="Output file or folder (default: <name>.<task><ext> beside each input).",
            ),
            compare_option(),
        ]

    def train_options(self) -> list[click.Parameter]:
        """Parameters of ``artgan train NAME``; an empty list means the task is not trainable."""
        return []

    def load(self, model: str | None = None, **options: Any) -> Pipeline:
        """Return a ready ``Pipeline`` for ``model`` (a name or a .safetensors path)."""
        raise NotImplementedError

    def run(self, inputs: list[str], out: str | None = None, compare: bool = False,
            **options: Any) -> int:
        """Run on image files, folders or globs; return the process exit code."""
        from artgan.batch import output_paths, process_images

        pairs = output_paths(inputs, out, suffix=self.name)
        return process_images(pairs, self.load(**options), out, compare=compare)

    def train(self, **options: Any) -> Path:
        """Train a model and return the path of the exported model file."""
        raise ArtganError(f"task {self.name!r} cannot be trained")
