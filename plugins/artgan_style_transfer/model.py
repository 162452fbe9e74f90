"""The ``cyclegan`` architecture: both generators of a CycleGAN in one model file.

A model file holds an ``nn.ModuleDict`` with ``a2b`` (photo -> painting) and ``b2a``
(painting -> photo), so ``--reverse`` needs no second download. The default is smaller
than the paper's (width 32 instead of 64, 6 residual blocks instead of 9, nearest-neighbour
upsampling instead of transposed convolutions): far less work per picture, so it runs on a
CPU, and no checkerboard artefacts.
"""

from __future__ import annotations

from torch import nn

from artgan.nn.blocks import ResnetGenerator

ARCHITECTURE = "cyclegan"
DEFAULT_CONFIG = {"width": 32, "n_blocks": 6, "n_down": 2, "upsample": "nearest"}
PAPER_CONFIG = {"width": 64, "n_blocks": 9, "n_down": 2, "upsample": "transposed"}


def cyclegan(
    width: int = 32, n_blocks: int = 6, n_down: int = 2, upsample: str = "nearest"
) -> nn.ModuleDict:
    """``{"a2b": G, "b2a": G}``: two ResNet generators with the same shape."""
    return nn.ModuleDict({
        direction: ResnetGenerator(width, n_blocks, n_down, upsample)
        for direction in ("a2b", "b2a")
    })
