"""Scoring a generator during training, so a run exports its best step, not its last.

A GAN trained on a CPU budget does not settle: the shipped generator's run scored SWD 170,
100, 141 and 98 at steps 2,200, 4,500, 6,000 and 9,000. ``GenerateValidation`` is the
measure of ``benchmarks/quality_generate.py`` (SWD of samples to the paintings, and the
periodic-artefact score against theirs) made cheap enough to run every few hundred steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from artgan import metrics

from .model import standing_stats
from .sampling import latents

LATENT_SEED = 1  # not 0: the progress grids and `artgan generate`'s default seed use 0


class GenerateValidation:
    """SWD of ``count`` samples from fixed latents to (at most ``MAX_PAINTINGS``) training
    pictures; with ``metric`` "swd+artefacts" times how many times the pictures' own score of
    periodic artefacts (``metrics.periodic_artefacts``) the samples have, when above 1.

    The samples come from the EMA generator with its batch-norm statistics estimated afresh
    (``model.standing_stats``), as the exported model's are, so the score is the export's.
    """

    MAX_PAINTINGS = 200

    def __init__(self, paintings: Tensor, count: int, latent_dim: int, *,
                 metric: str = "swd", projections: int = 128, batch: int = 32):
        self.paintings = paintings
        self.latents = latents(count, LATENT_SEED, latent_dim)
        self.projections = projections
        self.batch = batch
        big_enough = min(paintings.shape[-2:]) >= metrics.ARTEFACT_TILE
        self.clean = (metrics.periodic_artefacts(paintings)
                      if metric == "swd+artefacts" and big_enough else None)

    @classmethod
    def from_paths(cls, paths: Sequence[Path], size: int, count: int, latent_dim: int,
                   metric: str = "swd") -> GenerateValidation:
        """Load evenly spaced pictures of ``paths`` as ``size`` px centre squares."""
        return cls(metrics.load_squares(metrics.evenly_spaced(paths, cls.MAX_PAINTINGS), size),
                   count, latent_dim, metric=metric)

    def __call__(self, generator: nn.Module) -> float:
        device = next(generator.parameters()).device
        standing_stats(generator, batches=2)
        samples = torch.cat([generator(chunk.to(device)).float().cpu()
                             for chunk in self.latents.split(self.batch)])
        samples = ((samples + 1) / 2).clamp(0, 1)
        return metrics.swd_times_mesh(self.paintings, samples, self.clean,
                                      projections=self.projections)
