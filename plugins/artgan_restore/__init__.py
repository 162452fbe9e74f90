"""artgan's built-in ``restore`` task: find damage in scanned paintings and old photos and
repaint it with an adversarially trained inpainter, leaving every other pixel untouched.

Registered like any third-party plugin, through the hooks below: the task, its
architecture, the model artgan ships, its ``artgan studio`` tab (a brush for masks), and
``artgan restore`` (short for ``artgan run restore``). In Python: ``artgan.restore(image)``.
"""

from __future__ import annotations

import artgan
from artgan import store
from artgan_restore.task import RestoreTask

TASK = RestoreTask()


@artgan.hookimpl
def register_tasks(register):
    register(TASK)


@artgan.hookimpl
def register_architectures(register):
    from artgan_restore.model import ARCHITECTURE, build  # torch: gathered on first use

    register(ARCHITECTURE, build)


@artgan.hookimpl
def register_models(register):
    store.register_shipped(register, TASK.name)


@artgan.hookimpl
def register_studio_tabs(register):
    from artgan_restore.studio import restore_tab

    register(TASK.name, restore_tab)


@artgan.hookimpl
def register_commands(cli):
    from artgan.cli import task_command

    cli.add_command(task_command(TASK, "run"))


__all__ = ["TASK", "RestoreTask"]
