"""Turning seeds into latents and latents into pictures, reproducibly.

Latents are drawn on the CPU from a generator seeded with the user's seed, one after the
other, so image ``i`` of seed ``s`` is the same however many images are asked for, and the
same seed gives the same latents on every machine. The network runs in eval mode (batch-norm
uses its stored statistics), in torch's fp32 or OpenVINO's precision, so an image depends
only on its latent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from PIL import Image
from torch import Tensor

from artgan import ArtganError, Sampler, backends
from artgan.convert import tensor_to_pil

from .checks import check_count, check_seed, check_truncation

CHUNK = 16  # images per forward pass: bounds memory at 256 px on small machines


def latents(count: int, seed: int, dim: int, truncation: float = 1.0) -> Tensor:
    """``count`` standard-normal latents from ``seed``, scaled by ``truncation``.

    Truncation in z-space pulls each latent towards the mean (0): 1 keeps the full variety,
    smaller values give more typical, less varied pictures (0.7 is a common choice).
    """
    check_count(count)
    check_truncation(truncation)
    check_seed(seed)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(count, dim, generator=generator) * truncation


def slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    """Spherical interpolation: keeps the norm Gaussian latents have, unlike a straight line.

    A straight line between two latents passes near the origin, where the generator has
    rarely been trained (White 2016, "Sampling Generative Networks").
    """
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1).clamp(-1, 1)
    omega = torch.arccos(cos)
    if float(omega) < 1e-6:
        return torch.lerp(a, b, t)
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def walk(keys: Tensor, frames: int) -> Tensor:
    """``frames`` latents on a closed loop through ``keys`` (K, D), evenly spaced in time.

    The last frame stops one step short of the first key, so the animation loops smoothly.
    """
    check_count(frames, "--frames")
    count = keys.shape[0]
    out = []
    for frame in range(frames):
        position = frame * count / frames
        index = int(math.floor(position))
        out.append(slerp(keys[index], keys[(index + 1) % count], position - index))
    return torch.stack(out)


class GeneratorPipeline(Sampler):
    """A loaded generator: ``pipe(n, seed=...)`` returns ``n`` PIL images (the ``Sampler``
    contract); ``truncation`` below 1 trades variety for typical pictures. With ``backend``
    ``openvino`` the network runs there (on the CPU), cached as ``cache_key``
    (``artgan.backends.weights_key``; None: converted anew)."""

    def __init__(self, network: torch.nn.Module, device: torch.device | str, name: str = "",
                 backend: str = "torch", cache_key: str | None = None):
        self.device = torch.device(device)
        self.network = network.eval().to(self.device)
        self.name = name
        self.size: int = network.size
        self.latent_dim: int = network.latent_dim
        self.run = (backends.generator(self.network, self.latent_dim, cache_key)
                    if backend == "openvino" else self.network)

    def __call__(self, n: int = 4, seed: int = 0, truncation: float = 1.0) -> list[Image.Image]:
        return list(self.stream(n, seed, truncation))

    def stream(self, n: int = 4, seed: int = 0, truncation: float = 1.0
               ) -> Iterator[Image.Image]:
        """The same pictures as ``pipe(n, seed)``, made one chunk at a time as they are
        taken, so ``n`` can exceed what memory holds."""
        for chunk in latents(n, seed, self.latent_dim, truncation).split(CHUNK):
            yield from self.images(chunk)

    def interpolate(self, seeds: Sequence[int] = (0, 1, 2), frames: int = 48,
                    truncation: float = 1.0) -> list[Image.Image]:
        """A looping latent walk through one latent per seed, as ``frames`` pictures."""
        if len(seeds) < 2:
            raise ArtganError(f"interpolation needs at least 2 seeds, got {len(seeds)}")
        check_count(frames, "frames")
        keys = torch.cat([latents(1, s, self.latent_dim, truncation) for s in seeds])
        return self.images(walk(keys, frames))

    def images(self, z: Tensor) -> list[Image.Image]:
        """PIL images for latents ``z`` (N, latent_dim)."""
        return [tensor_to_pil(image) for image in self.process(z)]

    @torch.inference_mode()
    def process(self, batch: Tensor) -> Tensor:
        """Latents (N, latent_dim) -> images (N, 3, size, size) in [0, 1], on the CPU."""
        parts = [
            self.run(chunk.to(self.device, torch.float32)).float().cpu()
            for chunk in batch.split(CHUNK)
        ]
        return (torch.cat(parts) + 1) / 2
