"""Exponential moving averages of generator weights.

Averaged weights give visibly smoother, more stable samples than the raw weights at any
single step (Karras et al.), so they are what samples and exports use when kept.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from artgan.errors import ArtganError


class EMA:
    """Averaged copies of ``networks[name]`` for each name; ``copies`` holds them (eval mode).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early
    averages are not dominated by the random initialisation in short runs.
    Buffers (e.g. batch-norm statistics) are copied, not averaged.
    """

    def __init__(self, networks: dict[str, nn.Module], names: tuple[str, ...], decay: float):
        unknown = [name for name in names if name not in networks]
        if unknown:
            raise ArtganError(f"EMA of unknown network(s) {unknown}; networks: {sorted(networks)}")
        self.decay = decay
        self.updates = 0
        self._sources = {name: networks[name] for name in names}
        self.copies = {
            name: copy.deepcopy(net).eval().requires_grad_(False)
            for name, net in self._sources.items()
        }

    @torch.no_grad()
    def update(self) -> None:
        """Move each copy towards its network's current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, average in self.copies.items():
            source = self._sources[name]
            torch._foreach_lerp_(list(average.parameters()), list(source.parameters()), 1 - decay)
            for kept, current in zip(average.buffers(), source.buffers(), strict=True):
                kept.copy_(current)

    def state_dict(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "copies": {name: net.state_dict() for name, net in self.copies.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, weights in state["copies"].items():
            self.copies[name].load_state_dict(weights)
