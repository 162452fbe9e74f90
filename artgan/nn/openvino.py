"""The torch modules ``artgan.backends`` converts to OpenVINO or runs there.

Kept out of ``artgan.backends`` so that module loads without torch: a style picture whose
conversion is cached runs without it (see ``OpenVINOStyle``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from artgan import backends, infer


class StatsInputs(nn.Module):
    """``network`` whose instance norms (``norms``, ``inference_norms``' order) apply the
    statistics given as inputs: (mean, rstd) of every norm, concatenated."""

    def __init__(self, network: nn.Module, norms: list[infer.InferenceInstanceNorm],
                 channels: list[int]):
        super().__init__()
        self.network = network
        self.norms = norms  # a plain list: they are already inside ``network``
        self.channels = channels

    def forward(self, image: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
        for norm, m, r in zip(self.norms, mean.split(self.channels),
                              rstd.split(self.channels), strict=True):
            norm.frozen = (m, r)
        return self.network(image)


class StatsOutputs(nn.Module):
    """``network`` returning, instead of its picture, the statistics its instance norms
    (``norms``, recording) measure: (2, total) rows mean and rstd, every norm's
    channels concatenated."""

    def __init__(self, network: nn.Module, norms: list[infer.InferenceInstanceNorm]):
        super().__init__()
        self.network = network
        self.norms = norms  # a plain list: they are already inside ``network``

    def forward(self, image: Tensor) -> Tensor:
        self.network(image)
        recorded = [norm.recorded for norm in self.norms]
        return torch.stack([torch.cat([stats[row][0] for stats in recorded])  # type: ignore[index]
                            for row in (0, 1)])


def flat(stats: infer.Stats) -> tuple[Tensor, Tensor]:
    """The (mean, rstd) of every norm of one image, concatenated: ``StatsInputs``' inputs."""
    return (torch.cat([mean[0] for mean, _ in stats]),
            torch.cat([rstd[0] for _, rstd in stats]))


class OpenVINONetwork(nn.Module):
    """A torch network whose forward runs in OpenVINO (a restore model's detector and
    inpainter): the torch network stays inside for what callers read of it (``multiple``,
    ``outputs``, its CPU parameters), so the code around it runs unchanged. ``example``
    holds one (N, C, H, W) picture per input; batch, height and width are dynamic, so
    pictures and windows of any size are one cached conversion."""

    def __init__(self, network: nn.Module, key: str | None, example: Sequence[Tensor]):
        super().__init__()
        self.network = network
        self.multiple = network.multiple
        self.outputs = getattr(network, "outputs", 1)
        shapes = [(-1, x.shape[1], -1, -1) for x in example]
        self.compiled = backends.dynamic(key, lambda: backends.convert(network, example, shapes))

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.compiled(*inputs)
