"""Every hook an artgan plugin can implement.

A plugin is a module or object registered under the ``artgan`` entry-point group whose
functions are marked with ``@artgan.hookimpl``. Each hook receives a ``register`` callable
(or the CLI group) and adds to artgan's shared registries; none returns anything.
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

    ``path`` is a ``.safetensors`` file written by ``artgan.store.save_model``; user models
    with the same name win over it, and it wins over artgan's shipped models.
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
    """Add top-level commands to the ``artgan`` CLI with ``cli.add_command``."""
