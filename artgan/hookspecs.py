"""Every hook an artgan plugin can implement.

A plugin is a module or object registered under the ``artgan`` entry-point group whose
functions are marked with ``@artgan.hookimpl``. Each hook receives a ``register`` callable
(or a CLI group) and adds to artgan's registries; none returns anything. artgan's own
plugins (``artgan.builtins`` and the built-in tasks) use exactly these hooks.

Hooks run once per process, and again after ``artgan.plugins.reset()``: those of tasks,
models and commands on the first use of anything registered, those of architectures,
losses, augmentations and studio tabs (torch code) on the first use of their own kind.
A name belongs to whoever registers it first: built-ins, then third-party plugins by name;
a later claim on a taken name is refused with a warning unless the user allows it
(``ARTGAN_ALLOW_OVERRIDE``).
"""

import click
import pluggy

hookspec = pluggy.HookspecMarker("artgan")
hookimpl = pluggy.HookimplMarker("artgan")


@hookspec
def register_tasks(register):
    """Add tasks: call ``register(task)`` with an ``artgan.Task`` instance for each."""


@hookspec
def register_models(register):
    """Add named weights a plugin ships: ``register(name, task, path)``.

    ``path`` is a ``.safetensors`` file written by ``artgan.store.save_model``; a user model
    with the same name (in ``$ARTGAN_HOME/models``) wins over it. The built-in plugins
    register artgan's shipped models here (``artgan.store.register_shipped``).
    """


@hookspec
def register_architectures(register):
    """Add network factories by name: ``register(name, factory)``, ``factory(**config)``
    returning an ``nn.Module``. Model files name their architecture, so the store can rebuild it."""


@hookspec
def register_losses(register):
    """Add adversarial losses: ``register(name, loss)`` (an ``artgan.losses.AdversarialLoss``)."""


@hookspec
def register_augmentations(register):
    """Add differentiable augmentations: ``register(name, op)``; see ``artgan.augment``."""


@hookspec
def register_commands(cli: click.Group):
    """Add top-level commands to the ``artgan`` CLI: ``cli.add_command(command)`` or the
    ``@cli.command()`` decorator. ``artgan.cli.task_command(task, "run")`` makes a task's
    shortcut (``artgan restore`` for ``artgan run restore``). Names artgan or an earlier
    plugin holds are refused with a warning."""


@hookspec
def register_studio_tabs(register):
    """Give a task its own tab in ``artgan studio``: ``register(task_name, build)``, where
    ``build(studio, task)`` adds gradio components inside the open tab (import gradio
    inside it: the studio is an optional extra). Tasks without one get the tab their
    declared options make (``artgan.studio.tabs``)."""
