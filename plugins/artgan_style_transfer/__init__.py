"""The built-in ``style-transfer`` task: repaint photos in a painter's style (CycleGAN, CUT).

``artgan run style-transfer --style monet photo.jpg`` repaints a photo, at any size;
``artgan train style-transfer --domain-a photos/ --domain-b paintings/ --name mine`` trains
a style from two unpaired folders. In Python, ``artgan.stylize(image, style)`` returns the
same kind of image it was given (PIL, numpy or tensor).
"""

from __future__ import annotations

import artgan
from artgan import store

from .model import ARCHITECTURE, CUT_ARCHITECTURE, cut, cyclegan
from .task import StylePipeline, StyleTransferTask

TASK = StyleTransferTask()


@artgan.hookimpl
def register_tasks(register):
    register(TASK)


@artgan.hookimpl
def register_architectures(register):
    register(ARCHITECTURE, cyclegan)
    register(CUT_ARCHITECTURE, cut)


@artgan.hookimpl
def register_models(register):
    store.register_shipped(register, TASK.name)


__all__ = ["TASK", "StylePipeline", "StyleTransferTask", "cut", "cyclegan"]
