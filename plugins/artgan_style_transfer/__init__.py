"""The built-in ``style-transfer`` task: repaint photos in a painter's style (CycleGAN).

``artgan run style-transfer --style monet photo.jpg`` repaints a photo, at any size;
``artgan train style-transfer --domain-a photos/ --domain-b paintings/ --name mine`` trains
a style from two unpaired folders. In Python, ``stylize(image, style)`` returns the same
kind of image it was given (PIL, numpy or tensor).
"""

from __future__ import annotations

from typing import Any

from artgan.hookspecs import hookimpl

from .model import ARCHITECTURE, cyclegan
from .task import StylePipeline, StyleTransferTask

TASK = StyleTransferTask()


def stylize(image: Any, style: str = "monet", **options: Any) -> Any:
    """Repaint ``image`` in ``style`` (a model name or .safetensors path).

    Options are those of ``StyleTransferTask.load``: ``reverse``, ``device``, ``tile``,
    ``overlap``, ``batch``, ``max_size``. To repaint many pictures, load once with
    ``TASK.load(style)`` and call the pipeline instead.
    """
    return TASK.load(style, **options)(image)


@hookimpl
def register_tasks(register):
    register(TASK)


@hookimpl
def register_architectures(register):
    register(ARCHITECTURE, cyclegan)


__all__ = ["TASK", "StylePipeline", "StyleTransferTask", "cyclegan", "stylize"]
