"""The inpainting discriminator: a PatchGAN with spectral normalisation (SN-PatchGAN).

Spectral norm bounds each layer's Lipschitz constant, which keeps a discriminator that
sees many near-identical patches (everything outside the hole is real in both inputs)
from blowing up; it also needs no batch statistics, so real and fake batches can be
judged separately. It sees the mask as a fourth channel, so it can judge a filled hole
against its surroundings, and it returns its features for feature matching.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Logits per overlapping patch (about 70 px with ``layers=3``) and the features of
    every hidden layer, for (N, 3, H, W) pictures in [0, 1] with their (N, 1, H, W) masks."""

    def __init__(self, width: int = 64, layers: int = 3, max_width: int = 256):
        super().__init__()
        blocks = []
        c_in, c = 4, width
        for i in range(layers + 1):
            stride = 2 if i < layers else 1
            blocks.append(nn.Sequential(
                spectral_norm(nn.Conv2d(c_in, c, 4, stride=stride, padding=1)),
                nn.LeakyReLU(0.2, inplace=True),
            ))
            c_in, c = c, min(c * 2, max_width)
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(c_in, 1, 4, padding=1))

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, list[Tensor]]:
        x = torch.cat([image * 2 - 1, mask.to(image.dtype)], dim=1)
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features
