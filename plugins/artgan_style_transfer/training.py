"""CycleGAN's training algorithm (Zhu et al. 2017) as a ``GanModule`` for the shared Trainer,
and ``train_style``, which trains a style with it or with CUT (``contrastive.py``).

One step: each discriminator learns to tell (augmented) real pictures of its domain from
(augmented) fakes drawn half the time from a history pool; then both generators learn to
fool them while mapping each picture there and back again to itself (cycle loss) and, with
an identity weight, leaving pictures already in the target domain unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from artgan import ArtganError, metrics
from artgan.data import ImageFolder, UnpairedDataset, holdout_split
from artgan.losses import LOSSES, cycle_loss, identity_loss, periodic_artefact_loss
from artgan.nn.blocks import HistoryPool, PatchDiscriminator
from artgan.train import GanModule, StepContext, TrainConfig, Trainer
from artgan.train.driver import resumable_loader
from artgan.train.options import VALIDATION_METRICS

from .contrastive import CUTModule
from .model import ARCHITECTURE, cyclegan

GRID = 4  # pictures per domain in the progress grids
TITLES = {"cyclegan": "CycleGAN", "cut": "CUT", "fastcut": "FastCUT"}


class StyleValidation:
    """How close the A->B generator brings held-out photos to the painting set: their SWD,
    and with ``metric`` "swd+artefacts" also how clean it leaves them.

    SWD is the measure of ``benchmarks/quality_style.py`` (pooled-normalisation SWD of whole
    pictures to the paintings), on photos that neither training nor that benchmark uses,
    made cheaper for a run that checks it every few hundred steps: at most
    ``MAX_PAINTINGS`` paintings (evenly spaced) and ``projections`` random directions.
    "swd+artefacts" multiplies it by how many times the photos' own score of periodic
    artefacts (``metrics.periodic_artefacts``: the mesh) the stylized photos have, when that
    is more than 1: a step as clean as its inputs is judged by its SWD alone, a meshy one
    loses in proportion.
    """

    MAX_PAINTINGS = 200

    def __init__(
        self, photos: Tensor, paintings: Tensor, *, projections: int = 128, batch: int = 8,
        metric: str = "swd",
    ):
        self.photos = photos * 2 - 1  # the generators work in [-1, 1]
        self.paintings = paintings
        self.projections = projections
        self.batch = batch
        self.tile = min(64, photos.shape[-1], photos.shape[-2])
        self.clean = (metrics.periodic_artefacts(photos, tile=self.tile)
                      if metric == "swd+artefacts" else None)

    @classmethod
    def from_paths(
        cls, photos: Sequence[Path], paintings: Sequence[Path], side: int, metric: str = "swd"
    ) -> StyleValidation:
        """Load the photos and (evenly spaced) paintings as ``side`` px centre squares."""
        return cls(metrics.load_squares(photos, side),
                   metrics.load_squares(metrics.evenly_spaced(paintings, cls.MAX_PAINTINGS),
                                        side), metric=metric)

    def __call__(self, generator: nn.Module) -> float:
        device = next(generator.parameters()).device
        outputs = [
            generator(chunk.to(device)).float().cpu()
            for chunk in self.photos.split(self.batch)
        ]
        stylized = ((torch.cat(outputs) + 1) / 2).clamp(0, 1)
        return metrics.swd_times_mesh(self.paintings, stylized, self.clean,
                                      projections=self.projections, tile=self.tile)


class CycleGANModule(GanModule):
    """Two generators, two PatchGAN discriminators, LSGAN loss, cycle and identity terms."""

    ema = ("a2b", "b2a")

    def __init__(
        self,
        generator: dict[str, Any],
        *,
        d_width: int = 64,
        d_layers: int = 3,
        d_padding: str = "valid",
        d_antialias: bool = False,
        lr: float = 2e-4,
        cycle_weight: float = 10.0,
        identity_weight: float = 5.0,
        artefact_weight: float = 0.0,
        d_warmup: int = 0,
        pool_size: int = 50,
        loss: str = "lsgan",
        init: dict[str, Tensor] | None = None,
        validation: StyleValidation | None = None,
    ):
        self.config = dict(generator)
        self.discriminator = {"width": d_width, "n_layers": d_layers, "padding": d_padding,
                              "antialias": d_antialias}
        self.lr = lr
        self.cycle_weight = cycle_weight
        self.identity_weight = identity_weight
        self.artefact_weight = artefact_weight
        self.d_warmup = d_warmup
        self.loss = LOSSES.get(loss)
        self.pools = {"a": HistoryPool(pool_size), "b": HistoryPool(pool_size)}
        self.init = init
        self.validation = validation

    def state_dict(self) -> dict[str, Any]:
        return {"pools": {domain: pool.state_dict() for domain, pool in self.pools.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for domain, pool in self.pools.items():
            if "pools" in state:
                pool.load_state_dict(state["pools"][domain])

    def shape_options(self) -> dict[str, Any]:
        return {"--width": self.config.get("width"), "--blocks": self.config.get("n_blocks"),
                "--upsample": self.config.get("upsample"),
                "--antialias": bool(self.config.get("antialias")),
                "--d-width": self.discriminator["width"],
                "--d-layers": self.discriminator["n_layers"]}

    def networks(self) -> dict[str, nn.Module]:
        generators = cyclegan(**self.config)
        if self.init is not None:
            generators.load_state_dict(self.init)
        return {
            "a2b": generators["a2b"],
            "b2a": generators["b2a"],
            "d_a": PatchDiscriminator(**self.discriminator),
            "d_b": PatchDiscriminator(**self.discriminator),
        }

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        def adam(*names: str) -> torch.optim.Optimizer:
            params = chain.from_iterable(networks[n].parameters() for n in names)
            return torch.optim.Adam(params, lr=self.lr, betas=(0.5, 0.999))

        return {"generators": adam("a2b", "b2a"), "discriminators": adam("d_a", "d_b")}

    def training_step(self, batch: Sequence[Tensor], step: StepContext) -> dict[str, Tensor]:
        real_a, real_b = batch
        nets = step.networks
        warming_up = step.index < self.d_warmup
        with step.autocast(), torch.set_grad_enabled(not warming_up):
            fake_b, fake_a = nets["a2b"](real_a), nets["b2a"](real_b)

        # Discriminators: real and (pooled) fake in one pass; instance norm keeps them apart.
        d_losses, real_logits = [], []
        for domain, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            old = self.pools[domain](fake.detach()).to(real.dtype)
            with step.autocast():
                logits = nets[f"d_{domain}"](step.augment(torch.cat([real, old])))
            on_real, on_fake = logits.split([len(real), len(old)])
            d_losses.append(self.loss.d_loss(on_real, on_fake) / 2)
            real_logits.append(on_real)
        step.update_augment(torch.cat(real_logits))
        d_loss = d_losses[0] + d_losses[1]
        step.backward(d_loss, "discriminators")
        if warming_up:
            return {"d_loss": d_loss.detach()}

        # Generators, with the discriminators' weights frozen (saves their weight gradients).
        for name in ("d_a", "d_b"):
            nets[name].requires_grad_(False)
        try:
            with step.autocast():
                adversarial = self.loss.g_loss(nets["d_b"](step.augment(fake_b))) + \
                    self.loss.g_loss(nets["d_a"](step.augment(fake_a)))
                cycle = cycle_loss(nets["b2a"](fake_b), real_a) + \
                    cycle_loss(nets["a2b"](fake_a), real_b)
                g_loss = adversarial + self.cycle_weight * cycle
                same = torch.zeros((), device=real_a.device)
                if self.identity_weight:
                    same = identity_loss(nets["a2b"](real_b), real_b) + \
                        identity_loss(nets["b2a"](real_a), real_a)
                    g_loss = g_loss + self.identity_weight * same
                mesh = torch.zeros((), device=real_a.device)
                if self.artefact_weight:
                    mesh = periodic_artefact_loss(fake_b, real_a) + \
                        periodic_artefact_loss(fake_a, real_b)
                    g_loss = g_loss + self.artefact_weight * mesh
            step.backward(g_loss, "generators")
        finally:
            for name in ("d_a", "d_b"):
                nets[name].requires_grad_(True)
        return {
            "d_loss": d_loss.detach(),
            "g_adv": adversarial.detach(),
            "cycle": cycle.detach(),
            "identity": same.detach(),
            **({"artefacts": mesh.detach()} if self.artefact_weight else {}),
        }

    def validate(self, networks: dict[str, nn.Module]) -> float | None:
        return None if self.validation is None else self.validation(networks["a2b"])

    def fixed_inputs(self, batch: Sequence[Tensor]) -> list[Tensor]:
        return [images[:GRID] for images in batch]

    def sample(self, networks: dict[str, nn.Module], fixed: list[Tensor]) -> Tensor:
        """Rows of: photo, its painting, painting, its photo."""
        a, b = fixed
        rows = [a, networks["a2b"](a), b, networks["b2a"](b)]
        return torch.stack([r.float() for r in rows], dim=1).flatten(0, 1)

    def export(self, networks: dict[str, nn.Module]) -> tuple[nn.Module, str, dict[str, Any]]:
        both = nn.ModuleDict({"a2b": networks["a2b"], "b2a": networks["b2a"]})
        return both.eval(), ARCHITECTURE, dict(self.config)


def train_style(
    method: str,
    domain_a: str,
    domain_b: str,
    out: Path,
    config: TrainConfig,
    *,
    size: int,
    load_size: int | None,
    generator: dict[str, Any],
    module_options: dict[str, Any],
    batch_size: int,
    workers: int,
    holdout: int,
    validate: int,
    init: dict[str, Tensor] | None = None,
    init_name: str | None = None,
    validate_by: str = "swd",
) -> Path:
    """Train with ``method`` ("cyclegan", or "cut"/"fastcut": ``contrastive.CUTModule``) on the
    pictures of two folders and export the generators to ``out`` (the options as
    ``StyleTransferTask.train`` has them from ``driver.prepare``).

    ``holdout`` photos (the last by name) are left out for the quality benchmark and the
    ``validate`` photos before them for ``config.validate_every`` (scored by
    ``validate_by``, one of ``artgan.train.options.VALIDATION_METRICS``); ``init`` holds
    generator weights to start from (fine-tuning the style ``init_name``).
    """
    folder_a = ImageFolder(domain_a, size, load_size=load_size)
    folder_b = ImageFolder(domain_b, size, load_size=load_size)
    kept, held_out = holdout_split(folder_a.paths, holdout)
    kept, validation_paths = holdout_split(kept, validate, "--validate")
    set_a = folder_a.subset(kept)
    for name, count in (("--domain-a", len(set_a)), ("--domain-b", len(folder_b))):
        if count < batch_size:
            raise ArtganError(
                f"{name}: {count} readable pictures, fewer than the batch size {batch_size}"
            )
    validation = None
    if config.validate_every:
        multiple = 2 ** generator.get("n_down", 2)  # whole pictures at the scale of the crops
        side = (load_size or size) // multiple * multiple
        validation = StyleValidation.from_paths(validation_paths, folder_b.paths, side,
                                                validate_by)
    if method == "cyclegan":
        module: GanModule = CycleGANModule(generator, init=init, validation=validation,
                                           **module_options)
    else:
        module = CUTModule(generator, seed=config.seed, init=init, validation=validation,
                           **module_options)
    minimum = PatchDiscriminator(**module.discriminator).min_size()
    if size < minimum:
        raise ArtganError(
            f"--size {size} is too small for the discriminator (at least {minimum} px with "
            f"--d-layers {module.discriminator['n_layers']} and --d-padding "
            f"{module.discriminator['padding']}); use fewer --d-layers or a padded one"
        )
    if module_options.get("artefact_weight") and size < metrics.ARTEFACT_TILE:
        raise ArtganError(f"--artefact-weight needs crops of at least "
                          f"{metrics.ARTEFACT_TILE} px (--size {size})")
    if size % 2 ** generator.get("n_down", 2):
        raise ArtganError(f"--size {size} must be a multiple of {2 ** generator.get('n_down', 2)}")
    dataset = UnpairedDataset(set_a, folder_b)

    trainer = Trainer(module, resumable_loader(dataset, batch_size, config, workers), config)
    result = trainer.fit()
    facts = {
        "summary": f"{Path(domain_a).name} -> {Path(domain_b).name} {TITLES[method]} at "
                   f"{size} px "
                   f"(width {generator['width']}, {generator['n_blocks']} blocks)",
        "data": f"{domain_a} ({len(set_a)} pictures) <-> {domain_b} ({len(folder_b)} pictures)",
        "data_a": str(domain_a),
        "data_b": str(domain_b),
        "images_a": len(set_a),
        "images_b": len(folder_b),
        "holdout": f"last {len(held_out)} of {domain_a} by name" if held_out else None,
        "validation": (
            f"{VALIDATION_METRICS[validate_by]} to {domain_b} of "
            f"the {len(validation_paths)} photos of {domain_a} before "
            "the held-out ones (not trained on), every "
            f"{config.validate_every} steps" if config.validate_every else None
        ),
        "method": method,
        "size": size,
        "load_size": load_size,
        "batch_size": batch_size,
        "augment": config.augment,
        "lr_schedule": config.lr_schedule,
        "init": init_name,
        "stop_reason": result.stop_reason,
        **module_options,
    }
    return trainer.export(out, task="style-transfer", card=facts)
