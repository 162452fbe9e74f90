"""A tiny architecture for store tests, as a plugin: ``artgan_env.install(tiny_models)``."""

import torch
from torch import nn

import artgan


def tiny_net(width: int = 4) -> nn.Module:
    """Conv - ReLU - conv, 3 channels in and out."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 1))


@artgan.hookimpl
def register_architectures(register):
    register("test-tiny", tiny_net)


def make(seed: int = 0, width: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return tiny_net(width)
