"""artgan: make and repair art with generative adversarial networks.

The Python API mirrors the CLI: ``artgan.tasks()``, ``artgan.models()``, and
``artgan.load(task, model)`` returning a pipeline callable on PIL images, numpy arrays
or torch tensors (it returns the same kind it was given).
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


__all__ = ["Pipeline", "Task", "__version__", "hookimpl", "load", "models", "stylize", "tasks"]
