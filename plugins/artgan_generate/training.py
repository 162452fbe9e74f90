"""FastGAN's training algorithm as a ``GanModule`` for the shared Trainer.

One step: D learns to tell (augmented) paintings from (augmented) fakes with the hinge loss
while its decoders rebuild the real images from its features; then G learns to fool D.
Both see the same differentiable augmentation, so it does not leak into G's pictures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan import ArtganError, metrics
from artgan.data import ImageFolder
from artgan.losses import (
    ANCHOR_BLUR,
    LOSSES,
    periodic_artefact_loss,
    reconstruction_loss,
)
from artgan.train import AnchoredModule, StepContext, TrainConfig, Trainer
from artgan.train.driver import resumable_loader
from artgan.train.options import VALIDATION_METRICS

from .model import ARCHITECTURE, FastGANDiscriminator, FastGANGenerator, quarter_of, standing_stats
from .sampling import latents
from .validation import GenerateValidation

GRID = 16  # pictures in the progress grids: the first 16 of `artgan generate --seed 0`


def _fit(images: Tensor, size: int) -> Tensor:
    """Shrink reconstruction targets to the decoders' output size (area: no aliasing)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="area")


class FastGANModule(AnchoredModule):
    """Hinge-loss FastGAN with a self-supervised discriminator and an EMA generator."""

    ema = ("generator",)

    def __init__(
        self,
        size: int = 128,
        width: int = 32,
        latent_dim: int = 256,
        lr: float = 2e-4,
        loss: str = "hinge",
        reconstruction_weight: float = 1.0,
        antialias: bool = False,
        noise: bool = False,
        artefact_weight: float = 0.0,
        init: dict[str, Tensor] | None = None,
        d_warmup: int = 0,
        anchor_weight: float = 0.0,
        anchor_blur: float = ANCHOR_BLUR,
        validation: GenerateValidation | None = None,
    ):
        self.config = {"size": size, "width": width, "latent_dim": latent_dim}
        if antialias:  # older models' configs have no such key: they are not anti-aliased
            self.config["antialias"] = True
        if noise:  # nor have they noise
            self.config["noise"] = True
        self.lr = lr
        self.loss = LOSSES.get(loss)
        self.reconstruction_weight = reconstruction_weight
        self.artefact_weight = artefact_weight
        self.init = init
        self.d_warmup = d_warmup
        self.anchor_weight = anchor_weight
        self.anchor_blur = anchor_blur
        self.validation = validation

    def networks(self) -> dict[str, nn.Module]:
        generator = FastGANGenerator(**self.config)
        if self.init is not None:  # the blur has no weights: the keys match either way
            generator.load_state_dict(self.init)
        self.hold(generator)
        return {
            "generator": generator,
            "discriminator": FastGANDiscriminator(self.config["size"], self.config["width"],
                                                  self.config.get("antialias", False)),
        }

    def shape_options(self) -> dict[str, Any]:
        return {"--size": self.config["size"], "--width": self.config["width"],
                "--antialias": self.config.get("antialias", False),
                "--noise": self.config.get("noise", False)}

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        # beta1 = 0.5 as in DCGAN and FastGAN: momentum lags a moving adversarial target.
        return {
            name: torch.optim.Adam(net.parameters(), lr=self.lr, betas=(0.5, 0.999))
            for name, net in networks.items()
        }

    def training_step(self, batch: Tensor, step: StepContext) -> dict[str, Tensor]:
        generator, discriminator = step.networks["generator"], step.networks["discriminator"]
        z = torch.randn(batch.shape[0], self.config["latent_dim"], device=batch.device)
        warming_up = step.index < self.d_warmup  # G waits for a discriminator that judges
        with step.autocast():
            with torch.set_grad_enabled(not warming_up):
                fake = generator(z)
            real = step.augment(batch)
            real_logits, (whole, part, quarter) = discriminator(real, reconstruct=True)
            fake_logits = discriminator(step.augment(fake.detach()))
        adversarial = self.loss.d_loss(real_logits, fake_logits)
        rebuilt = reconstruction_loss(whole, _fit(real, whole.shape[-1])) + reconstruction_loss(
            part, _fit(quarter_of(real, quarter), part.shape[-1])
        )
        step.update_augment(real_logits)
        step.backward(adversarial + self.reconstruction_weight * rebuilt, "discriminator")
        judged = {"d_loss": adversarial.detach(), "rec_loss": rebuilt.detach(),
                  "d_real": real_logits.detach().float().mean(),
                  "d_fake": fake_logits.detach().float().mean()}
        if warming_up:
            return judged

        # D's weights need no gradients in G's phase: freezing them skips computing those.
        discriminator.requires_grad_(False)
        try:
            with step.autocast():
                g_loss = self.loss.g_loss(discriminator(step.augment(fake)))
                if self.artefact_weight:
                    mesh = periodic_artefact_loss(fake, batch)
                    g_loss = g_loss + self.artefact_weight * mesh
                anchor = self.anchored(fake, z)
                if anchor is not None:
                    g_loss = g_loss + self.anchor_weight * anchor
            step.backward(g_loss, "generator")
        finally:
            discriminator.requires_grad_(True)
        return {
            **({"artefacts": mesh.detach()} if self.artefact_weight else {}),
            **({"anchor": anchor.detach()} if anchor is not None else {}),
            **judged,
            "g_loss": g_loss.detach(),
        }

    def validate(self, networks: dict[str, nn.Module]) -> float | None:
        return None if self.validation is None else self.validation(networks["generator"])

    def fixed_inputs(self, batch: Tensor) -> Tensor:
        return latents(GRID, 0, self.config["latent_dim"]).to(batch.device)

    def sample(self, networks: dict[str, nn.Module], fixed: Tensor) -> Tensor:
        generator = networks["generator"]
        standing_stats(generator, batches=2)  # a preview: 128 latents are plenty
        return generator(fixed).float()

    def export(self, networks: dict[str, nn.Module]) -> tuple[nn.Module, str, dict[str, Any]]:
        generator = networks["generator"]
        standing_stats(generator, batches=8)
        return generator.eval(), ARCHITECTURE, dict(self.config)


def train_generator(
    data: str, out: Path, config: TrainConfig, *, size: int, width: int,
    latent_dim: int = 256, batch_size: int = 16, lr: float = 2e-4, workers: int = 0,
    antialias: bool = False, noise: bool = False, artefact_weight: float = 0.0,
    init: dict[str, Tensor] | None = None, init_name: str | None = None, d_warmup: int = 0,
    anchor_weight: float = 0.0, anchor_blur: float = ANCHOR_BLUR, validate: int = 0,
    validate_by: str = "swd+artefacts",
) -> Path:
    """Train a FastGAN on the pictures in ``data`` and export its EMA generator to ``out``;
    ``antialias`` blurs after G's upsamplings and before D's strided convolutions, ``noise``
    adds per-pixel noise to G's double blocks (``model.NoiseInjection``), ``artefact_weight``
    weighs ``losses.periodic_artefact_loss`` in G's loss. ``init`` (the weights of the model
    ``init_name``) starts G, against a new D that trains alone for the first ``d_warmup``
    steps, held near its start by ``anchor_weight`` (``anchor_loss``). With
    ``config.validate_every``, ``validate`` samples are scored by ``validate_by``
    (``validation.GenerateValidation``) and the best step is exported."""
    if anchor_weight and init is None:
        raise ArtganError("--anchor-weight needs --init")
    if artefact_weight and size < metrics.ARTEFACT_TILE:
        raise ArtganError(f"--artefact-weight needs pictures of at least "
                          f"{metrics.ARTEFACT_TILE} px (--size {size})")
    dataset = ImageFolder(data, size)
    if len(dataset) < batch_size:
        raise ArtganError(
            f"{data}: {len(dataset)} readable pictures, fewer than the batch size {batch_size}; "
            "add pictures or lower --batch-size"
        )

    loader = resumable_loader(dataset, batch_size, config, workers)
    validation = (GenerateValidation.from_paths(dataset.paths, size, validate, latent_dim,
                                                validate_by)
                  if config.validate_every else None)
    module = FastGANModule(size, width, latent_dim, lr=lr, antialias=antialias, noise=noise,
                           artefact_weight=artefact_weight, init=init, d_warmup=d_warmup,
                           anchor_weight=anchor_weight, anchor_blur=anchor_blur,
                           validation=validation)
    trainer = Trainer(module, loader, config)
    result = trainer.fit()
    card = {
        "summary": f"{size} px FastGAN (width {width}) on {len(dataset)} pictures "
                   f"from {Path(data).name}" + (f", fine-tuned from {init_name}" if init else ""),
        "data": str(data),
        "images": len(dataset),
        "size": size,
        "width": width,
        "antialias": antialias,
        "noise": noise,
        "artefact_weight": artefact_weight,
        "init": init_name,
        "d_warmup": d_warmup,
        "anchor_weight": anchor_weight,
        "anchor_blur": anchor_blur,
        "batch_size": batch_size,
        "augment": config.augment,
        "ada_target": config.ada_target,
        "validation": (f"{VALIDATION_METRICS[validate_by]} of "
                       f"{validate} samples to the training pictures every "
                       f"{config.validate_every} steps" if config.validate_every else None),
        "stop_reason": result.stop_reason,
    }
    return trainer.export(out, task="generate", card=card)
