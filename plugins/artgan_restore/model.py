"""The ``restore`` architecture: detector and inpainter in one model file.

One file keeps the pair that was trained together; both stay small (the shipped pair is
7.5 MB). ``size`` is the inpainter's working resolution, used for windows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ``build`` imports the networks: the CLI imports this module for names
    from torch import nn

ARCHITECTURE = "restore"
TASK = "restore"
DEFAULT_CONFIG: dict[str, Any] = {
    "detector": {"width": 12, "depth": 4, "opacity": True},
    "inpainter": {"width": 24, "downs": 3, "blocks": 6, "global_ratio": 0.75,
                  "upsample": "resize"},
    "size": 256,
}

# what a model file written before an inpainter option existed has
OLDER_INPAINTER: dict[str, Any] = {"upsample": "transposed"}


def build(detector: dict[str, Any], inpainter: dict[str, Any], size: int = 256) -> nn.ModuleDict:
    """``ModuleDict({"detector", "inpainter"})`` from their configs; ``size`` is only
    recorded in the model's config, for the windowing."""
    from torch import nn

    from artgan_restore.detector import DamageDetector
    from artgan_restore.inpainter import Inpainter

    if size < 32:
        raise ValueError(f"working size must be at least 32 px, got {size}")
    return nn.ModuleDict({"detector": DamageDetector(**detector),
                          "inpainter": Inpainter(**{**OLDER_INPAINTER, **inpainter})})
