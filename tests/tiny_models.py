"""A tiny architecture for store and CLI tests, importable from subprocesses too."""

import torch
from torch import nn

from artgan.nn import ARCHITECTURES


def tiny_net(width: int = 4) -> nn.Module:
    """Conv - ReLU - conv, 3 channels in and out."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 1))


ARCHITECTURES.register("test-tiny", tiny_net, replace=True)


def make(seed: int = 0, width: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return tiny_net(width)
