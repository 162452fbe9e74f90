"""artgan's own plugin: the losses and augmentations of the core, through the same hooks
as any plugin (registered first, so their names stay artgan's)."""

from __future__ import annotations

from artgan.hookspecs import hookimpl


@hookimpl
def register_losses(register):
    from artgan.losses import BUILTIN_LOSSES

    for name, loss in BUILTIN_LOSSES.items():
        register(name, loss)


@hookimpl
def register_augmentations(register):
    from artgan.augment import BUILTIN_AUGMENTATIONS

    for name, op in BUILTIN_AUGMENTATIONS.items():
        register(name, op)
