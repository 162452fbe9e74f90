"""artgan: make and repair art with generative adversarial networks.

The Python API mirrors the CLI: ``artgan.tasks()``, ``artgan.models()``, and
``artgan.load(task, model)`` returning a pipeline callable on PIL images, numpy arrays
or torch tensors (it returns the same kind it was given). Shortcuts for the built-in
tasks: ``artgan.stylize``, ``artgan.restore``, ``artgan.generate`` and
``artgan.interpolate``; each delegates to its task plugin, like the CLI does.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from artgan.hookspecs import hookimpl  # noqa: E402
from artgan.task import Pipeline, Task  # noqa: E402


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


def load(task: str, model: str | None = None, **options: Any) -> Pipeline:
    """Load ``model`` (a name or .safetensors path; None = the task's default) for ``task``."""
    from artgan import plugins

    return plugins.get_task(task).load(model, **options)


def stylize(image: Any, style: str = "monet", **options: Any) -> Any:
    """Repaint ``image`` in ``style`` (a style-transfer model name or path)."""
    return load("style-transfer", style, **options)(image)


def restore(image: Any, mask: Any = None, *, return_mask: bool = False,
            model: str | None = None, **options: Any) -> Any:
    """Find the damage in ``image`` (or use ``mask``: white = repaint) and paint it back.

    Returns the same kind of image it was given, and the mask used if ``return_mask``.
    """
    from artgan import plugins

    return plugins.get_task("restore").restore(
        image, mask=mask, return_mask=return_mask, model=model, **options
    )


def generate(n: int = 4, model: str | None = None, seed: int = 0, **options: Any) -> list:
    """``n`` new PIL images from a generate model; the same seed gives the same images."""
    from artgan import plugins

    return plugins.get_task("generate").sample(n, model=model, seed=seed, **options)


def interpolate(model: str | None = None, seeds: tuple[int, ...] = (0, 1, 2),
                frames: int = 48, **options: Any) -> list:
    """A looping latent walk through one point per seed, as ``frames`` PIL images."""
    from artgan import plugins

    return plugins.get_task("generate").interpolate(
        model=model, seeds=seeds, frames=frames, **options
    )


__all__ = [
    "Pipeline", "Task", "__version__", "generate", "hookimpl", "interpolate", "load", "models",
    "restore", "stylize", "tasks",
]
