"""The style-transfer architectures: ``cyclegan`` (both directions) and ``cut`` (one).

A ``cyclegan`` model file holds an ``nn.ModuleDict`` with ``a2b`` (photo -> painting) and
``b2a`` (painting -> photo), so ``--reverse`` needs no second download; a ``cut`` file
(trained with CUT or FastCUT, which learn one direction) holds ``a2b`` only. The default
generator is smaller than the paper's (width 32 instead of 64, 6 residual blocks instead of
9, nearest-neighbour upsampling instead of transposed convolutions): far less work per
picture, so it runs on a CPU, and no checkerboard artefacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the builders import torch: the CLI imports this module for its names
    from torch import nn

ARCHITECTURE = "cyclegan"
CUT_ARCHITECTURE = "cut"
ARCHITECTURES = (ARCHITECTURE, CUT_ARCHITECTURE)
METHODS = ("cyclegan", "cut", "fastcut")  # how a style is trained: training.py, contrastive.py
DEFAULT_CONFIG = {"width": 32, "n_blocks": 6, "n_down": 2, "upsample": "nearest"}
PAPER_CONFIG = {"width": 64, "n_blocks": 9, "n_down": 2, "upsample": "transposed"}


def cyclegan(
    width: int = 32, n_blocks: int = 6, n_down: int = 2, upsample: str = "nearest",
    antialias: bool = False,
) -> nn.ModuleDict:
    """``{"a2b": G, "b2a": G}``: two ResNet generators with the same shape."""
    from torch import nn

    from artgan.nn.blocks import ResnetGenerator

    return nn.ModuleDict({
        direction: ResnetGenerator(width, n_blocks, n_down, upsample, antialias=antialias)
        for direction in ("a2b", "b2a")
    })


def cut(
    width: int = 32, n_blocks: int = 6, n_down: int = 2, upsample: str = "nearest",
    antialias: bool = False,
) -> nn.ModuleDict:
    """``{"a2b": G}``: the one generator of a CUT or FastCUT model."""
    from torch import nn

    from artgan.nn.blocks import ResnetGenerator

    return nn.ModuleDict({"a2b": ResnetGenerator(width, n_blocks, n_down, upsample,
                                                 antialias=antialias)})
