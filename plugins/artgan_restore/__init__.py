"""artgan's built-in ``restore`` task: find damage in scanned paintings and old photos and
repaint it with an adversarially trained inpainter, leaving every other pixel untouched.

Registered like any third-party plugin, through the hooks below.
"""

from __future__ import annotations

from typing import Any

import artgan
from artgan_restore.model import ARCHITECTURE, build
from artgan_restore.task import RestoreTask

TASK = RestoreTask()


@artgan.hookimpl
def register_tasks(register):
    register(TASK)


@artgan.hookimpl
def register_architectures(register):
    register(ARCHITECTURE, build)


def restore(image: Any, mask: Any = None, return_mask: bool = False, model: str | None = None,
            **options: Any) -> Any:
    """Restore ``image`` (PIL image, numpy array or tensor).

    Damage is detected unless ``mask`` (a path, image or array; white/True = repaint) is
    given; pixels outside the mask come back unchanged. Options: ``device``, ``threshold``,
    ``dilate``. With ``return_mask`` returns ``(restored, mask)``.
    """
    return TASK.restore(image, mask=mask, return_mask=return_mask, model=model, **options)


__all__ = ["RestoreTask", "restore"]
