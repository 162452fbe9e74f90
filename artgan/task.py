"""The ``Task`` interface that every plugin implements, and the two kinds of pipeline a
task's ``load`` returns.

A task names itself, describes itself in one line, declares its CLI options (click
parameters, so ``artgan run TASK --help`` shows them), loads a model and optionally trains
one. The CLI, the Python API and the batch runner only talk to tasks through this class.

What ``load`` returns is one of two contracts, each tested for every registered task
(``tests/test_task_contract.py``):

* ``Pipeline``, image to image: ``pipeline(image, **options)`` takes a PIL image, numpy
  array or tensor and returns the same kind (style transfer; restore, whose options are
  ``mask`` and ``return_mask``);
* ``Sampler``, pictures from seeds: ``sampler(n, seed=0)`` returns ``n`` PIL images and
  ``sampler.interpolate(seeds, frames)`` a looping walk through one picture per seed
  (generate).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from PIL import Image

from artgan.errors import ArtganError

if TYPE_CHECKING:
    import torch


class _CPU:
    """``Pipeline.device``'s default, ``torch.device("cpu")``, made when first read: torch is
    not imported with artgan. A subclass sets its own in ``__init__``, as before."""

    def __get__(self, instance: object, owner: type) -> torch.device:
        import torch

        return torch.device("cpu")


class Pipeline:
    """Image to image, on PIL images, numpy arrays or tensors, returning the same kind.

    Subclasses implement ``process``: it receives a float batch (N, 3, H, W) in [0, 1],
    already on ``self.device`` (the device ``load`` chose), under ``torch.inference_mode``,
    and returns a batch of the same shape and range on any device.
    """

    device: torch.device = _CPU()  # type: ignore[assignment]

    def __call__(self, image: Any, **options: Any) -> Any:
        import torch  # here: importing artgan must not cost torch's 1.2 s (artgan --help)

        from artgan.convert import to_batch

        batch, restore = to_batch(image)
        with torch.inference_mode():
            result = self.process(batch.to(self.device), **options)
        return restore(result.float().cpu())

    def process(self, batch: torch.Tensor, **options: Any) -> torch.Tensor:
        raise NotImplementedError


class Sampler:
    """Pictures from seeds: the same seed gives the same pictures, on any device.

    Subclasses implement both methods; ``options`` are the sampler's own (generate's
    ``truncation``).
    """

    def __call__(self, n: int = 4, seed: int = 0, **options: Any) -> list[Image.Image]:
        """``n`` new pictures; picture ``i`` depends on ``seed`` and ``i`` only."""
        raise NotImplementedError

    def interpolate(self, seeds: Sequence[int] = (0, 1, 2), frames: int = 48,
                    **options: Any) -> list[Image.Image]:
        """``frames`` pictures walking through one picture per seed and back to the first."""
        raise NotImplementedError


def compare_option() -> click.Option:
    """``--compare``: before | after pictures, for image-to-image tasks."""
    return click.Option(
        ["--compare"], is_flag=True,
        help="Write each input and its result side by side (before | after).",
    )


BACKENDS = ("auto", "torch", "openvino")  # what ``--backend`` takes (``artgan.backends``)


def backend_option(default: str = "auto", network: str = "the network") -> click.Option:
    """``--backend``: what runs ``network`` (``artgan.backends``)."""
    return click.Option(
        ["--backend"], type=click.Choice(BACKENDS), default=default,
        show_default=True, help=f"What runs {network}: openvino (CPU only; pip install "
        '"artgan[openvino]"), torch, or auto: openvino when installed and on the CPU.',
    )


class Task:
    """Base class for tasks; a plugin registers instances through ``register_tasks``."""

    name: str = ""
    description: str = ""
    default_model: str | None = None

    def run_options(self) -> list[click.Parameter]:
        """Parameters of ``artgan run NAME``; the default: ``file_options()`` and
        ``--compare``. Extend it (``super().run_options() + [...]``) to add options."""
        return [*self.file_options(), compare_option()]

    def file_options(self) -> list[click.Parameter]:
        """``INPUTS`` (files, folders, globs) and ``--out``, for a task that runs over files;
        the help names the first of ``output_suffixes()``."""
        suffixes = self.output_suffixes()
        beside = f"<name>.{suffixes[0]}<ext>" if suffixes else "<name><ext>"
        return [
            click.Argument(["inputs"], nargs=-1, required=True),
            click.Option(["--out", "-o"], help=f"Output file or folder (default: {beside} "
                                                "beside each input)."),
        ]

    def output_suffixes(self) -> tuple[str, ...]:
        """The ``<suffix>`` of the files it writes beside its inputs (``photo.<suffix>.jpg``),
        which a later run over the same folder leaves out; ``run`` uses the task's name."""
        return (self.name,)

    def train_options(self) -> list[click.Parameter]:
        """Parameters of ``artgan train NAME``; an empty list means the task is not trainable."""
        return []

    def load(self, model: str | None = None, **options: Any) -> Pipeline | Sampler:
        """A ready ``Pipeline`` or ``Sampler`` for ``model`` (a name or .safetensors path;
        None: ``default_model``). Declare each option as a keyword parameter: the API
        (``artgan.load``) refuses any other with a one-line error (``check_load_options``)."""
        raise NotImplementedError

    def run(self, inputs: list[str], out: str | None = None, compare: bool = False,
            **options: Any) -> int:
        """Run on image files, folders or globs; return the process exit code."""
        from artgan.batch import output_paths, process_files, write_results

        pairs = output_paths(inputs, out, suffix=self.name)
        return process_files(pairs, write_results(self.load(**options), compare), out)

    def train(self, **options: Any) -> Path:
        """Train a model and return the path of the exported model file."""
        raise ArtganError(f"task {self.name!r} cannot be trained")


def check_load_options(task: Task, options: dict[str, Any]) -> None:
    """Refuse keyword options that ``task.load`` does not declare (a typo would otherwise be
    ignored, or fail deep inside the task); a ``load`` taking ``**options`` checks its own."""
    parameters = inspect.signature(task.load).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    known = [name for name, p in parameters.items() if name != "model"
             and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                            inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ArtganError(f"unknown {task.name} option(s): {', '.join(unknown)}; "
                          f"{task.name} takes {', '.join(known) or 'none'}")
