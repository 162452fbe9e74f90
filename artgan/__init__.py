"""artgan: make and repair art with generative adversarial networks.

The Python API mirrors the CLI: ``artgan.tasks()``, ``artgan.models()``, and
``artgan.load(task, model, **options)`` returning the task's ``Pipeline`` (image to
image: called on a PIL image, numpy array or tensor, it returns the same kind) or
``Sampler`` (pictures from seeds); see ``artgan.task``. ``stylize``, ``restore``,
``generate`` and ``interpolate`` are shortcuts through ``load`` for the built-in tasks.

A plugin needs ``hookimpl``, ``Task``, ``Pipeline``/``Sampler`` and ``ArtganError`` from
here, and the submodules that ``docs/plugins.md`` lists as artgan's plugin API.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from artgan.errors import ArtganError, UnknownNameError  # noqa: E402
from artgan.hookspecs import hookimpl  # noqa: E402
from artgan.task import Pipeline, Sampler, Task  # noqa: E402


def tasks() -> list[str]:
    """Names of every task from built-in and installed plugins."""
    from artgan import plugins

    return plugins.task_names()


def models(task: str | None = None) -> list:
    """Every model artgan can find (``artgan.store.ModelInfo``), optionally of one task."""
    from artgan import plugins, store

    if task is not None:
        plugins.get_task(task)
    return store.list_models(task)


def load(task: str, model: str | None = None, **options: Any) -> Pipeline | Sampler:
    """Load ``model`` (a name or .safetensors path; None = the task's default) for ``task``;
    ``options`` are the keywords the task's ``load`` declares (others are refused)."""
    from artgan import plugins
    from artgan.task import check_load_options

    found = plugins.get_task(task)
    check_load_options(found, options)
    return found.load(model, **options)


def stylize(image: Any, style: str = "monet", **options: Any) -> Any:
    """Repaint ``image`` in ``style`` (a style-transfer model name or path)."""
    return load("style-transfer", style, **options)(image)


def restore(image: Any, mask: Any = None, *, return_mask: bool = False,
            model: str | None = None, **options: Any) -> Any:
    """Find the damage in ``image`` (or use ``mask``: white = repaint) and paint it back.

    Returns the same kind of image it was given, and the mask used if ``return_mask``;
    ``options``: those of the restore task's ``load`` (``device``, ``threshold``, ...).
    """
    return load("restore", model, **options)(image, mask=mask, return_mask=return_mask)


def generate(n: int = 4, model: str | None = None, seed: int = 0, truncation: float = 1.0,
             **options: Any) -> list:
    """``n`` new PIL images from a generate model; the same seed gives the same images."""
    return load("generate", model, **options)(n, seed, truncation=truncation)


def interpolate(model: str | None = None, seeds: tuple[int, ...] = (0, 1, 2),
                frames: int = 48, truncation: float = 1.0, **options: Any) -> list:
    """A looping latent walk through one point per seed, as ``frames`` PIL images."""
    return load("generate", model, **options).interpolate(seeds, frames,
                                                          truncation=truncation)


__all__ = [
    "ArtganError", "Pipeline", "Sampler", "Task", "UnknownNameError", "__version__",
    "generate", "hookimpl", "interpolate", "load", "models", "restore", "stylize", "tasks",
]
