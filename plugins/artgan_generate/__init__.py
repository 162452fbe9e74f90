"""The built-in ``generate`` task: new pictures in the style of a small collection.

``artgan train generate --data paintings/ --name mine`` trains a FastGAN-style generator
(see ``model``) on as few as ~100 pictures; ``artgan generate --model mine -n 16`` samples
from it. In Python, ``artgan.generate`` and ``artgan.interpolate`` return PIL images.
"""

from __future__ import annotations

import artgan
from artgan import store

from .task import GenerateTask

TASK = GenerateTask()


@artgan.hookimpl
def register_tasks(register):
    register(TASK)


@artgan.hookimpl
def register_architectures(register):
    from .model import ARCHITECTURE, FastGANGenerator  # torch: gathered on first use

    register(ARCHITECTURE, FastGANGenerator)


@artgan.hookimpl
def register_models(register):
    store.register_shipped(register, TASK.name)


@artgan.hookimpl
def register_commands(cli):
    from artgan.cli import task_command

    cli.add_command(task_command(TASK, "run"))


__all__ = ["TASK", "GenerateTask"]
