"""Training the restore model on the shared Trainer: inpainter, discriminator and detector.

All three networks train in one ``GanModule`` from the same batches of clean paintings,
which is simpler to run and resume than two jobs. Each step:

* the inpainter repairs half of the batch with free-form holes (thin scratches to ~40 %
  of the picture) over which a flat colour hides the picture, and the other half with
  synthetic damage (``damage.random_damage``), under which stains and cracks leave part of
  the picture showing. It is trained adversarially against a spectral-norm PatchGAN (hinge
  by default), with L1 inside the hole (what PSNR measures), a little L1 outside it (keeps
  the prediction near the picture so the composite has no seam) and discriminator feature
  matching (stabilises the adversarial term, as in pix2pixHD/LaMa). The discriminator
  judges only patches that overlap the hole: elsewhere real and composite inputs are
  identical and teach it nothing;
* the detector learns to segment synthetic damage (``damage.random_damage`` at the
  benchmark's levels, quantised to 8 bits like a scan) drawn over pictures first given the
  looks of real clean photographs that it must not mark (``looks.clean_looks``: wires,
  lattices, text, glints, grain, JPEG blocks, old-photo tones), with binary cross-entropy
  plus Dice, the Dice term keeping sparse thin scratches
  from being ignored, and (with an opacity output) binary cross-entropy on whether each
  damaged pixel hides the picture. ``--hard-negatives`` adds the clean pictures a detector
  doubted (``benchmarks/mine_false_alarms.py``), which random crops seldom show it.
  The detector needs many more pictures than the inpainter to stop mistaking brushwork
  for scratches, and it is the smaller network, so it can take ``detector_steps``
  updates per step, each on a fresh damage draw over the batch turned a further quarter turn
  (damage has no preferred direction).

Masks and damage come from a generator seeded by the step index, so a resumed run draws
exactly what an uninterrupted one would.

``--init MODEL --only opacity`` trains only the detector's opacity output on the frozen
features of the model's detector, so its damage output stays exactly as it was.

``--init MODEL --only detector`` (or ``inpainter``) goes on training one network of an
existing model, the other exported as it was, scored every ``--validate-every`` steps on
held-out paintings as ``quality_restore`` scores it (the detector by pixel F1, the
inpainter by PSNR inside the damage), so the best step is the one shipped. A network
fine-tuned this way keeps its batch-norm statistics as they were (``freeze_norm``): updated
from batches of eight 128 px crops they drift with every batch, and that drift alone (at a
learning rate of 1e-12) worsened the validation score of ``restore/general``'s detector
from 0.274 to 0.313 in 150 steps, and (at learning rate 0) its inpainter's from 21.00 to
18.13 dB in 120; with them kept, 116 such steps leave the detector exactly as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import ConcatDataset

from artgan import ArtganError
from artgan.convert import quantize_
from artgan.data import ImageFolder, holdout_split
from artgan.losses import LOSSES, feature_matching_loss, reconstruction_loss
from artgan.store import load_model
from artgan.train import GanModule, StepContext, Trainer
from artgan.train.driver import TrainRun, init_default_help, resumable_loader, shared_options
from artgan_restore.damage import (
    CLEAN_SHARE,
    VISIBLE_CHANGE,
    _Draw,
    free_form_masks,
    random_damage,
)
from artgan_restore.detector import DamageDetector
from artgan_restore.discriminator import PatchDiscriminator
from artgan_restore.inpainter import Inpainter, composite, resize_from_transposed
from artgan_restore.looks import clean_looks
from artgan_restore.model import ARCHITECTURE, DEFAULT_CONFIG, OLDER_INPAINTER, TASK
from artgan_restore.validation import DetectorValidation, InpainterValidation

WEIGHTS = {"hole": 1.0, "known": 0.1, "adversarial": 0.05, "features": 1.0}
OPACITY_WEIGHT = 0.5  # the opacity output's loss against the damage mask's
# The share of detector training pictures damaged like one of the benchmark's levels (thin
# scratches; craquelure and stains; holes) rather than with a free mix of every kind. Fine-
# tunes of restore/general on the free mix (old photographs' dust, creases and silvering
# among it) found less of the benchmark's damage at every false-alarm rate; on the levels,
# as much or more, and far more at the lowest rates (CHANGELOG, 2026-12-05).
LEVEL_SHARE = 1.0
# how much smaller than the training picture ``enlarged_damage`` crops before enlarging
# (log-uniform): the softness of a scan enlarged 1.2-4x on some level of restore's pyramid
ENLARGED_RANGE = (1.2, 4.0)
DOUBLE_SHARE = 0.2  # of those crops, enlarged 2x
BICUBIC_SHARE = 0.7  # of those crops, enlarged bicubic (the rest bilinear)


class RestoreModule(GanModule):
    """Inpainter + discriminator (adversarial) and detector (segmentation).

    ``init`` holds the weights of an exported model to start from; ``only`` ("detector" or
    "inpainter") trains that network alone; a detector of another shape than ``init``'s
    starts from its weights wherever their shapes fit (a shallower one keeps the upper
    levels) and fresh elsewhere; ``init_upsample`` says how ``init``'s inpainter upsamples
    (its transposed convolutions become the resize convolutions of a "resize" config);
    ``decoder_only`` trains only the inpainter's decoder and head.
    ``validation`` scores the network that trains (the Trainer
    picks one step for both, so validation needs ``only``). ``texture_weight`` scales the
    adversarial and feature-matching terms against the L1 reconstruction: lower trades
    plausible texture for fidelity (PSNR). ``freeze_norm`` keeps the batch-norm layers of the
    ``only`` network (detector or inpainter) in eval mode (their running statistics fixed;
    their scales and shifts still learn).
    """

    ema = ("inpainter",)

    def __init__(self, config: dict[str, Any], lr: float = 1e-3, d_lr: float = 1e-4,
                 detector_lr: float = 2e-3, loss: str = "hinge", seed: int = 0,
                 detector_steps: int = 1, init: dict[str, Tensor] | None = None,
                 init_upsample: str = "resize",
                 only: str | None = None,
                 validation: DetectorValidation | InpainterValidation | None = None,
                 texture_weight: float = 1.0, freeze_norm: bool = False,
                 enlarged_damage: float = 0.0, decoder_only: bool = False):
        self.config = config
        self.enlarged_damage = enlarged_damage
        self.lr, self.d_lr, self.detector_lr = lr, d_lr, detector_lr
        self.detector_steps = detector_steps
        self.loss = LOSSES.get(loss)
        self.seed = seed
        self.init, self.init_upsample = init, init_upsample
        self.only = only
        if only == "detector":  # average the network that trains; the inpainter stays as it is
            self.ema = ("detector",)
        elif only == "opacity":
            self.ema = ()
        self.validation = validation
        self.texture_weight = texture_weight
        if freeze_norm and only not in ("detector", "inpainter"):
            raise ValueError(f"freeze_norm keeps one trained network's statistics, not {only}'s")
        self.freeze_norm = freeze_norm
        self.decoder_only = decoder_only
        self._generators: dict[torch.device, torch.Generator] = {}

    def networks(self) -> dict[str, nn.Module]:
        pair = nn.ModuleDict({"detector": DamageDetector(**self.config["detector"]),
                              "inpainter": Inpainter(**self.config["inpainter"])})
        if self.init is not None:  # only a reshaped detector can miss some (config checks)
            pair.load_state_dict(_fitting(self._init_weights(), pair.state_dict()),
                                 strict=False)
        if self.decoder_only:  # the rest keeps its weights: no gradient is even computed
            pair["inpainter"].requires_grad_(False)
            for part in (pair["inpainter"].decoder, pair["inpainter"].head):
                part.requires_grad_(True)
        return {
            "inpainter": pair["inpainter"],
            "discriminator": PatchDiscriminator(),
            "detector": pair["detector"],
        }

    def _init_weights(self) -> dict[str, Tensor]:
        """The ``init`` weights, a transposed-convolution decoder turned into the resize
        convolutions this inpainter has (``inpainter.resize_from_transposed``)."""
        if self.init_upsample == self.config["inpainter"]["upsample"]:
            return self.init
        prefix = "inpainter."
        own = {key[len(prefix):]: value for key, value in self.init.items()
               if key.startswith(prefix)}
        return {**self.init, **{prefix + key: value
                                for key, value in resize_from_transposed(own).items()}}

    def validate(self, networks: dict[str, nn.Module]) -> float | None:
        return None if self.validation is None else self.validation(networks)

    def shape_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for option, path in _SHAPE_OPTIONS.items():
            value = self.config[path[0]] if len(path) == 1 else self.config[path[0]][path[1]]
            options[option] = value
        options["--detector-opacity"] = bool(self.config["detector"].get("opacity"))
        options["--inpainter-upsample"] = self.config["inpainter"]["upsample"]
        return options

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        trained = [parameter for parameter in networks["inpainter"].parameters()
                   if parameter.requires_grad]  # all but with ``decoder_only``
        return {
            "inpainter": torch.optim.Adam(trained, self.lr, betas=(0.5, 0.999)),
            "discriminator": torch.optim.Adam(networks["discriminator"].parameters(), self.d_lr,
                                              betas=(0.5, 0.999)),
            "detector": torch.optim.Adam(networks["detector"].parameters(), self.detector_lr),
        }

    def _random(self, step: StepContext, device: torch.device) -> torch.Generator:
        """The step's generator, on the training device: drawing there needs no host copies,
        each of which would wait for the GPU's queue to drain. Each process draws its own."""
        if device not in self._generators:
            self._generators[device] = torch.Generator(device)
        seed = (self.seed * 1_000_003 + step.index) * 1009 + step.world.rank
        return self._generators[device].manual_seed(seed)

    def training_step(self, batch: Tensor, step: StepContext) -> dict[str, Tensor | float]:
        images = (batch.float() + 1) / 2
        generator = self._random(step, images.device)
        losses = {}
        if self.only == "opacity":
            return self._opacity_steps(images, generator, step)
        if self.freeze_norm:  # the Trainer turns every network to train mode around validation
            frozen_norm(step.networks[self.only])
        if self.only != "detector":
            losses.update(self._inpainter_step(images, generator, step))
        if self.only != "inpainter":
            losses.update(self._detector_steps(images, generator, step))
        return losses

    def _opacity_steps(self, images: Tensor, generator: torch.Generator,
                       step: StepContext) -> dict[str, Tensor]:
        """``detector_steps`` updates of the opacity output alone: the detector's features
        come from its frozen trunk in eval mode, and only the head's opacity rows get a
        gradient (its damage rows get none, so Adam leaves them exactly as they were)."""
        detector = step.networks["detector"]
        for turn in range(self.detector_steps):
            # every kind: what hides the picture includes old photographs' dust and
            # plaster losses, which the benchmark's levels do not draw
            damaged, truth, opaque = detector_inputs(images, generator, turn, clean=0.0,
                                                     levels=0.0)
            detector.eval()
            with torch.no_grad(), step.autocast():
                features = detector.features(damaged)
            detector.train()
            logits = detector.head(features.float())[:, 1:]
            loss = F.binary_cross_entropy_with_logits(
                logits, opaque, weight=truth, reduction="sum") / truth.sum().clamp_min(1)
            step.backward(loss, "detector")
        return {"opacity": loss}

    def _detector_steps(self, images: Tensor, generator: torch.Generator,
                        step: StepContext) -> dict[str, Tensor]:
        """``detector_steps`` detector updates; returns the last one's losses."""
        for turn in range(self.detector_steps):
            damaged, truth, opaque = detector_inputs(images, generator, turn,
                                                     enlarged=self.enlarged_damage)
            with step.autocast():
                outputs = step.networks["detector"](damaged).float()
            logits = outputs[:, :1]
            bce = F.binary_cross_entropy_with_logits(logits, truth)
            seg_loss = bce + dice_loss(logits, truth)
            losses = {"seg_bce": bce}
            if outputs.shape[1] > 1:  # opacity: judged on the damaged pixels only
                opacity = F.binary_cross_entropy_with_logits(outputs[:, 1:], opaque,
                                                             weight=truth, reduction="sum")
                losses["opacity"] = opacity / truth.sum().clamp_min(1)
                seg_loss = seg_loss + OPACITY_WEIGHT * losses["opacity"]
            step.backward(seg_loss, "detector")
        return {**losses, "seg": seg_loss}

    def _inpainter_step(self, images: Tensor, generator: torch.Generator,
                        step: StepContext) -> dict[str, Tensor]:
        """The discriminator's update, then the inpainter's; returns their losses. With
        ``texture_weight`` 0 the discriminator cannot affect the inpainter, so it sits out
        (training it would be work for nothing)."""
        damaged, masks = damaged_inputs(images, generator)
        with step.autocast():
            prediction = step.networks["inpainter"](damaged, masks).float()
            filled = composite(prediction, images, masks)
            hole = reconstruction_loss(prediction, images, masks)
            known = reconstruction_loss(prediction, images, 1 - masks)
        g_loss = WEIGHTS["hole"] * hole + WEIGHTS["known"] * known
        losses = {"l1_hole": hole}
        if self.texture_weight > 0:
            losses["d"], judged = self._discriminator_step(images, filled.detach(), masks, step)
            with step.autocast():
                adversarial, matching = self._texture_losses(images, filled, masks, judged, step)
            texture = WEIGHTS["adversarial"] * adversarial + WEIGHTS["features"] * matching
            g_loss = g_loss + self.texture_weight * texture
            losses.update(g_adv=adversarial, g_fm=matching)
        step.backward(g_loss, "inpainter")
        step.networks["discriminator"].requires_grad_(True)
        return losses

    def _discriminator_step(self, images: Tensor, filled: Tensor, masks: Tensor,
                            step: StepContext) -> tuple[Tensor, Tensor]:
        """One discriminator update; returns its loss and which of its patches are judged."""
        discriminator = step.networks["discriminator"]
        with step.autocast():
            real_logits, _ = discriminator(images, masks)
            fake_logits, _ = discriminator(filled, masks)
            judged = _patches(masks, fake_logits)
            d_loss = self.loss.d_loss(real_logits, fake_logits[judged])
        step.backward(d_loss, "discriminator")
        return d_loss, judged

    def _texture_losses(self, images: Tensor, filled: Tensor, masks: Tensor, judged: Tensor,
                        step: StepContext) -> tuple[Tensor, Tensor]:
        """The inpainter's adversarial and feature-matching losses; the discriminator is
        frozen until the inpainter's update is done."""
        discriminator = step.networks["discriminator"]
        discriminator.requires_grad_(False)
        fake_logits, fake_features = discriminator(filled, masks)
        with torch.no_grad():
            _, real_features = discriminator(images, masks)
        return (self.loss.g_loss(fake_logits[judged]),
                feature_matching_loss(real_features, fake_features))

    def fixed_inputs(self, batch: Tensor) -> dict[str, Tensor]:
        images = ((batch[:8].float() + 1) / 2)
        generator = torch.Generator().manual_seed(self.seed)
        if self.only in ("detector", "opacity"):
            damaged, masks, _ = random_damage(images, generator, clean=0.0)
        else:
            damaged, masks = damaged_inputs(images, generator)
        return {"damaged": damaged, "masks": masks}

    def sample(self, networks: dict[str, nn.Module], fixed: dict[str, Tensor]) -> Tensor:
        """Damaged pictures, then their repair; or, when only the detector trains, a map of
        what it finds (red: the detector's probability, green: the true damage, so yellow
        is found damage, red a false alarm and green a miss)."""
        damaged, masks = fixed["damaged"], fixed["masks"]
        if self.only in ("detector", "opacity"):
            found = torch.sigmoid(networks["detector"](damaged)[:, :1].float())
            second = torch.cat([found, masks, torch.zeros_like(masks)], dim=1)
        else:
            second = composite(networks["inpainter"](damaged, masks).float(), damaged, masks)
        return torch.cat([damaged, second]) * 2 - 1

    def export(self, networks: dict[str, nn.Module]) -> tuple[nn.Module, str, dict[str, Any]]:
        pair = nn.ModuleDict({"detector": networks["detector"],
                              "inpainter": networks["inpainter"]})
        return pair, ARCHITECTURE, self.config


def _fitting(init: dict[str, Tensor], own: dict[str, Tensor]) -> dict[str, Tensor]:
    """The ``init`` weights that fit ``own``: same shape, or the leading part of a tensor
    grown along its first axis (a detector head given an opacity output keeps its damage
    output); the rest of such a tensor keeps its fresh values."""
    fitting = {}
    for key, value in init.items():
        if key not in own:
            continue
        if own[key].shape == value.shape:
            fitting[key] = value
        elif (value.dim() and own[key].shape[1:] == value.shape[1:]
              and own[key].shape[0] > value.shape[0]):
            grown = own[key].clone()
            grown[: value.shape[0]] = value
            fitting[key] = grown
    return fitting


def frozen_norm(network: nn.Module) -> None:
    """Put ``network``'s batch-norm layers in eval mode: they normalise with the running
    statistics they have and stop updating them."""
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def detector_inputs(images: Tensor, generator: torch.Generator, turn: int,
                    clean: float = CLEAN_SHARE, levels: float = LEVEL_SHARE,
                    enlarged: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Detector training inputs ``(damaged, mask, opaque)`` for clean ``images`` in [0, 1]:
    turned ``turn`` quarter turns (damage has no preferred direction), given clean looks
    the detector must leave alone, then damaged (a ``clean`` share not at all; a ``levels``
    share as in the benchmark, the rest with a free mix of every kind; for an ``enlarged``
    share of batches, parts of enlarged scans: ``enlarged_damage``) and quantised to 8 bits
    like a scan."""
    looks = clean_looks(torch.rot90(images, turn, dims=(2, 3)), generator)
    if enlarged and float(torch.rand((), generator=generator, device=generator.device)) < enlarged:
        damaged, mask, opaque = enlarged_damage(looks, generator, clean, levels)
    else:
        damaged, mask, opaque = random_damage(looks, generator, clean=clean, levels=levels)
    return quantize_(damaged) / 255, mask, opaque


def enlarged_damage(images: Tensor, generator: torch.Generator, clean: float,
                    levels: float) -> tuple[Tensor, Tensor, Tensor]:
    """A part of an enlarged scan: a random crop of each of ``images``, ``ENLARGED_RANGE``
    times smaller, damaged by ``random_damage`` (a ``clean`` share not at all; its damage
    sized for the crop) and enlarged back, picture and damage together (bicubic for a
    ``BICUBIC_SHARE``, else bilinear), as a level of restore's pyramid shows an enlarged
    scan. A ``DOUBLE_SHARE`` is enlarged 2x (exactly, for even sides): the enlargement that
    falls in step with the detector's 2x2 fold. As in ``random_damage``, the mask is where
    the enlarged damage changed the enlarged picture visibly, which includes the soft rim
    the enlargement gives it, and nothing else differs from the enlarged clean crop.

    Fine-tunes with it find more of an enlarged scan's damage but mark soft clean pictures
    more than the shipped detector does (CHANGELOG: det6, det7); enlarging only the damage
    over the sharp picture did so too."""
    n, _, height, width = images.shape
    draw = _Draw(generator, images.device)
    low, high = ENLARGED_RANGE
    factor = low * (high / low) ** draw.uniform(n)
    factor = torch.where(draw.uniform(n) < DOUBLE_SHARE, torch.full_like(factor, 2.0), factor)
    crop_h = (height / factor).round().clamp(min=8).long().tolist()
    crop_w = (width / factor).round().clamp(min=8).long().tolist()
    top_share, left_share = draw.uniform(n).tolist(), draw.uniform(n).tolist()
    bicubic = (draw.uniform(n) < BICUBIC_SHARE).tolist()

    def enlarge(x: Tensor, mode: str) -> Tensor:
        return F.interpolate(x, size=(height, width), mode=mode, align_corners=False)

    pictures, masks, hidden = [], [], []
    for i in range(n):
        top = int(top_share[i] * max(0, height - crop_h[i] + 1))
        left = int(left_share[i] * max(0, width - crop_w[i] + 1))
        crop = images[i: i + 1, :, top: top + crop_h[i], left: left + crop_w[i]]
        damaged, _, opaque = random_damage(crop, generator, clean=clean, levels=levels)
        mode = "bicubic" if bicubic[i] else "bilinear"
        before, after = enlarge(crop, mode).clamp(0, 1), enlarge(damaged, mode).clamp(0, 1)
        inside = (after - before).abs().amax(dim=1, keepdim=True) >= VISIBLE_CHANGE
        pictures.append(torch.where(inside, after, before))
        masks.append(inside.float())
        hidden.append((inside & (enlarge(opaque, "bilinear") > 0.5)).float())
    return torch.cat(pictures), torch.cat(masks), torch.cat(hidden)


def damaged_inputs(images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Inpainter training inputs ``(damaged, masks)`` for clean ``images`` in [0, 1]: the
    first half free-form holes filled with a flat random colour (nothing of the picture
    left), the rest synthetic damage of random kinds (some of it left)."""
    n, _, height, width = images.shape
    half = (n + 1) // 2
    holes = free_form_masks(half, height, width, generator, images.device)
    colour = torch.rand(half, 3, 1, 1, generator=generator, device=generator.device)
    covered = composite(colour.to(images.device).expand(-1, -1, height, width),
                        images[:half], holes)
    if half == n:
        return covered, holes
    damaged, masks, _ = random_damage(images[half:], generator, clean=0.0)
    return torch.cat([covered, damaged]), torch.cat([holes, masks])


def _patches(masks: Tensor, logits: Tensor) -> Tensor:
    """Which discriminator logits look at part of a hole (bool, like ``logits``)."""
    return F.adaptive_max_pool2d(masks.float(), logits.shape[-2:]) > 0


def dice_loss(logits: Tensor, target: Tensor, smooth: float = 1.0) -> Tensor:
    """1 - Dice overlap per image, averaged; an image with no damage is pushed to none."""
    probability = torch.sigmoid(logits.float())
    overlap = (probability * target).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1 - (2 * overlap + smooth) / (total + smooth)).mean()


# --- the command ----------------------------------------------------------------------------


def restore_train_options() -> list[click.Parameter]:
    """``artgan train restore`` options: data and model shape, then the shared ones."""
    own = [
        click.Option(["--data"], multiple=True, required=True,
                     type=click.Path(exists=True, file_okay=False),
                     help="Folder of clean paintings or photos (repeatable)."),
        click.Option(["--hard-negatives"], multiple=True,
                     type=click.Path(exists=True, file_okay=False),
                     help="Folder of clean training pictures the detector wrongly marks, "
                          "each centred on the place (benchmarks/mine_false_alarms.py): "
                          "trained on as --data is, never held out or validated; repeat "
                          "it to draw them more often."),
        click.Option(["--enlarged-damage"], type=click.FloatRange(0, 1), default=0.0,
                     show_default=True, metavar="SHARE",
                     help="Share of detector batches that show parts of enlarged scans: a crop "
                          "damaged, then enlarged 1.2-4x with its damage (some of them "
                          "clean), as restore's pyramid shows a large scan."),
        click.Option(["--name"], default="restore", show_default=True,
                     help="Model name; saved as <user model dir>/restore/NAME.safetensors."),
        click.Option(["--out"], type=click.Path(dir_okay=False),
                     help="Write the model here instead."),
        click.Option(["--size"], type=click.IntRange(min=32),
                     help=init_default_help("Training crop size, also the inpainting window size",
                                            DEFAULT_CONFIG["size"])),
        click.Option(["--load-size"], type=click.IntRange(min=32), metavar="PX",
                     help="Scale pictures to this shorter side, then cut --size crops at that "
                          "scale. Restore runs at a scan's own resolution, so give the size "
                          "your pictures have (default: crops cover most of each picture, "
                          "which trains on a coarser scale than restore will see)."),
        click.Option(["--holdout"], type=click.IntRange(min=0), default=0, show_default=True,
                     help="Leave out the last N images (sorted by path) of each folder, "
                          "for evaluation."),
        click.Option(["--batch-size"], type=click.IntRange(min=1), default=16,
                     show_default=True, help="Pictures per step (per process)."),
        click.Option(["--workers"], type=click.IntRange(min=0), default=0, show_default=True,
                     help="Data loading processes."),
        click.Option(["--lr"], type=float, default=1e-3, show_default=True,
                     help="Inpainter learning rate."),
        click.Option(["--d-lr"], type=float, default=1e-4, show_default=True,
                     help="Discriminator learning rate."),
        click.Option(["--init"], metavar="MODEL",
                     help="Start from this restore model (name or file); its architecture "
                          "and window size are used (--size, --width and --blocks must "
                          "match or be left out; with --only detector, another "
                          "--detector-width or --detector-depth trains a detector of that "
                          "shape, starting from the model's weights where they fit)."),
        click.Option(["--only"], type=click.Choice(["detector", "inpainter", "opacity"]),
                     help="Train only this network of the --init model; the other is "
                          "exported as it is (the inpainter's discriminator, not part of "
                          "a model file, starts afresh). 'opacity': only the detector's "
                          "opacity output, on its frozen features."),
        click.Option(["--validate"], type=click.IntRange(min=0), default=0, show_default=True,
                     metavar="N",
                     help="Leave out the N images before the --holdout ones of each folder "
                          "and score the network that trains on them every --validate-every "
                          "steps (needs --only: the detector by pixel F1, the inpainter by "
                          "PSNR); the best step is exported."),
        click.Option(["--detector-lr"], type=float, default=2e-3, show_default=True,
                     help="Detector learning rate."),
        click.Option(["--detector-steps"], type=click.IntRange(min=1), default=1,
                     show_default=True,
                     help="Detector updates per step, each on fresh damage: the detector "
                          "needs more pictures than the inpainter to learn."),
        click.Option(["--loss"], type=click.Choice(["hinge", "nonsaturating"]),
                     default="hinge", show_default=True, help="Adversarial loss."),
        click.Option(["--texture-weight"], type=click.FloatRange(min=0), default=1.0,
                     show_default=True,
                     help="Scale of the inpainter's adversarial and feature-matching terms "
                          "against its L1 reconstruction: lower paints less invented "
                          "texture, aiming at fidelity (PSNR) over plausibility; 0 "
                          "trains no discriminator at all."),
        click.Option(["--width"], type=click.IntRange(min=2),
                     help=init_default_help("Inpainter base width",
                                             DEFAULT_CONFIG["inpainter"]["width"])),
        click.Option(["--blocks"], type=click.IntRange(min=1),
                     help=init_default_help("Inpainter FFC blocks",
                                             DEFAULT_CONFIG["inpainter"]["blocks"])),
        click.Option(["--detector-width"], type=click.IntRange(min=2),
                     help=init_default_help("Detector base width",
                                             DEFAULT_CONFIG["detector"]["width"])),
        click.Option(["--detector-depth"], type=click.IntRange(min=1, max=6),
                     help=init_default_help("Detector U-Net levels below half resolution",
                                            DEFAULT_CONFIG["detector"]["depth"])),
        click.Option(["--detector-opacity/--no-detector-opacity"], default=None,
                     help="Give the detector a second output saying which damage hides the "
                          "picture entirely, so restore does not read it (default: on for "
                          "a new model, as the --init model has it otherwise)."),
        click.Option(["--decoder-only"], is_flag=True,
                     help="With --only inpainter: train only the inpainter's decoder and "
                          "head, the parts --inpainter-upsample changes; its encoder and "
                          "Fourier blocks keep what they learnt."),
        click.Option(["--inpainter-upsample"], type=click.Choice(["resize", "transposed"]),
                     default=None,
                     help="How the inpainter's decoder upsamples: 'resize' (bilinear, then a "
                          "convolution; no checkerboard) or 'transposed' (the first models'; "
                          "a faint dotted grid in large fills). Default: resize for a new "
                          "model, as the --init model has it otherwise; an --init model's "
                          "transposed decoder is converted to start from."),
    ]
    # the discriminator input carries the mask: no augmentation
    return own + shared_options(TASK, skip=("augment", "ada_target"))


def training_data(folders: list[str], size: int, holdout: int,
                  load_size: int | None = None, validate: int = 0,
                  hard_negatives: tuple[str, ...] = (),
                  ) -> tuple[ConcatDataset, list[Path]]:
    """Random crops from every folder, each minus its last ``holdout`` images (by path) and
    the ``validate`` images before those, whose paths are returned too; and from every
    ``hard_negatives`` folder, all of it (mined from training pictures: nothing to hold out)."""
    parts, validation = [], []
    for folder in folders:
        images = ImageFolder(folder, size, load_size=load_size)
        if len(images) <= holdout + validate:
            raise ArtganError(f"{folder}: {len(images)} images, none left after --holdout "
                              f"{holdout} and --validate {validate}")
        kept, _ = holdout_split(images.paths, holdout)
        kept, validated = holdout_split(kept, validate, "--validate")
        parts.append(images.subset(kept))
        validation += validated
    mined = {folder: ImageFolder(folder, size, load_size=load_size)
             for folder in dict.fromkeys(hard_negatives)}  # a repeated folder is read once
    parts += [mined[folder] for folder in hard_negatives]
    return ConcatDataset(parts), validation


# --option -> where it sits in a restore config
_SHAPE_OPTIONS = {"--size": ("size",), "--width": ("inpainter", "width"),
                  "--blocks": ("inpainter", "blocks"), "--detector-width": ("detector", "width"),
                  "--detector-depth": ("detector", "depth")}


def _init_config(given: dict[str, Any], start: dict[str, Any], init: str,
                 only: str | None = None) -> dict[str, Any]:
    """The config of the ``--init`` model, with the detector shape ``given`` where allowed.

    A shape option set to something else than the model has is an error, except the
    detector's in a ``--only detector`` run: that asks for a detector of that shape beside
    the model's inpainter (a bigger or shallower detector need not retrain the inpainter).
    """
    config = {**DEFAULT_CONFIG, **start}
    config["detector"] = {"opacity": False, **config["detector"]}  # older models have none

    def value(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
        return tree[path[0]] if len(path) == 1 else tree[path[0]][path[1]]

    detector = dict(config["detector"])
    for option, path in _SHAPE_OPTIONS.items():
        wanted, kept = value(given, path), value(config, path)
        if wanted is None or wanted == kept:
            continue
        if not (only == "detector" and path[0] == "detector"):
            raise ArtganError(f"{option} {wanted}: --init {init} has {kept}; leave {option} out")
        detector[path[1]] = wanted
    opacity = given["detector"].get("opacity")  # None: as the model has it
    if only == "opacity":
        opacity = True
    if opacity is not None and opacity != detector["opacity"]:
        if only not in ("detector", "opacity"):
            raise ArtganError(f"--detector-opacity: --init {init} has a detector "
                              f"{'with' if detector['opacity'] else 'without'} one; "
                              "changing it needs --only detector or --only opacity")
        detector["opacity"] = opacity
    inpainter = {**OLDER_INPAINTER, **config["inpainter"]}
    upsample = given["inpainter"].get("upsample")  # None: as the model has it
    if upsample is not None and upsample != inpainter["upsample"]:
        if upsample == "transposed":
            raise ArtganError(f"--inpainter-upsample transposed: --init {init} has resize "
                              "convolutions, which cannot become transposed ones")
        if only not in (None, "inpainter"):
            raise ArtganError(f"--inpainter-upsample {upsample}: --init {init} has "
                              f"{inpainter['upsample']}; changing it trains the inpainter, "
                              f"which --only {only} keeps as it is")
        inpainter["upsample"] = upsample
    return {**config, "detector": detector, "inpainter": inpainter}


def _defaults(given: dict[str, Any]) -> dict[str, Any]:
    """A new model's config: ``given``'s shape options, the defaults where left out."""
    def merged(value: Any, default: Any) -> Any:
        if isinstance(default, dict):
            return {key: merged(value.get(key), item) for key, item in default.items()}
        return default if value is None else value

    return merged(given, DEFAULT_CONFIG)


def train(run: TrainRun, *, data: tuple[str, ...], size: int | None, load_size: int | None,
          holdout: int, batch_size: int, workers: int, lr: float, d_lr: float,
          detector_lr: float, detector_steps: int, loss: str, width: int | None,
          blocks: int | None, detector_width: int | None, detector_depth: int | None,
          detector_opacity: bool | None, inpainter_upsample: str | None,
          init: str | None, only: str | None, validate: int, texture_weight: float,
          hard_negatives: tuple[str, ...] = (), enlarged_damage: float = 0.0,
          decoder_only: bool = False, **shared: Any) -> Path:
    """Train and export a restore model from the options of ``run`` (``driver.prepare``'s:
    pass them again as keywords); returns the model file's path."""
    config = {
        "detector": {"width": detector_width, "depth": detector_depth,
                     "opacity": detector_opacity},
        "inpainter": {**DEFAULT_CONFIG["inpainter"], "width": width, "blocks": blocks,
                      "upsample": inpainter_upsample},
        "size": size,
    }
    start, fresh_detector = None, False
    if init:
        start = load_model(init, TASK)
        config = _init_config(config, start.config, init, only)
        fresh_detector = config["detector"] != {"opacity": False, **start.config.get(
            "detector", DEFAULT_CONFIG["detector"])}
    elif only:
        raise ArtganError(f"--only {only} needs --init MODEL: the other network to keep")
    else:
        config = _defaults(config)
        config["detector"]["opacity"] = detector_opacity is not False
    size = config["size"]
    multiple = 2 ** max(config["inpainter"]["downs"], config["detector"]["depth"])
    if size % multiple:
        raise ArtganError(f"--size must be a multiple of {multiple}, got {size}")
    if validate and only == "opacity":
        raise ArtganError("--only opacity does not validate: leave out --validate")
    if validate and not only:  # driver.prepare pairs --validate with --validate-every
        raise ArtganError("--validate N, --validate-every STEPS and --only go together: "
                          "validation scores the one network that trains")
    if enlarged_damage and only not in (None, "detector"):
        raise ArtganError(f"--enlarged-damage trains the detector; --only {only} does not")
    if decoder_only and only != "inpainter":
        raise ArtganError("--decoder-only trains part of the inpainter: it needs "
                          "--only inpainter")
    if hard_negatives and only not in (None, "detector"):
        raise ArtganError(f"--hard-negatives trains the detector; --only {only} does not")
    dataset, validation_paths = training_data(list(data), size, holdout, load_size, validate,
                                              hard_negatives)
    validation = None
    if only == "detector" and validate:
        validation = DetectorValidation.from_paths(validation_paths)
    elif only == "inpainter" and validate:
        validation = InpainterValidation.from_paths(validation_paths, size)
    module = RestoreModule(config, lr=lr, d_lr=d_lr, detector_lr=detector_lr, loss=loss,
                           seed=run.config.seed, detector_steps=detector_steps,
                           init=None if start is None else start.network.state_dict(),
                           init_upsample=({**OLDER_INPAINTER, **start.config["inpainter"]}
                                          ["upsample"] if start else "resize"),
                           only=only,
                           texture_weight=texture_weight,
                           validation=validation,
                           freeze_norm=(only == "inpainter"
                                        or (only == "detector" and not fresh_detector)),
                           enlarged_damage=enlarged_damage, decoder_only=decoder_only)

    loader = resumable_loader(dataset, batch_size, run.config, min(workers, os.cpu_count() or 1))
    trainer = Trainer(module, loader, run.config)
    result = trainer.fit()
    sources = ", ".join(Path(folder).name for folder in data)
    mined = (f"; hard negatives: {', '.join(Path(f).name for f in hard_negatives)}"
             if hard_negatives else "")
    card = {
        "data": f"{sources} ({len(dataset)} images, last {holdout} of each held out){mined}",
        "summary": f"damage detector + FFC inpainter on {sources}, {size} px windows",
        "size": size,
        "load_size": load_size,
        "batch_size": batch_size,
        "detector_steps": detector_steps,
        "enlarged_damage": enlarged_damage or None,
        "init": init,
        "trained": ("opacity output only" if only == "opacity" else
                    "new detector only" if fresh_detector else
                    "inpainter's decoder and head only" if decoder_only else
                    f"{only} only" if only else "detector and inpainter"),
        "validation": (f"{validation.description} of {len(validation_paths)} held-out "
                       f"images" if validation else None),
        "loss": loss,
        "texture_weight": None if only in ("detector", "opacity") else texture_weight,
        "losses": {key: round(value, 4) for key, value in result.losses.items()},
    }
    if start is not None and not fresh_detector:
        # Without them `artgan restore` would detect at the uncalibrated default; the --init
        # model's are right for its detector and a starting point for a fine-tuned one.
        kept = {key: start.info.card[key] for key in ("threshold", "sure")
                if key in start.info.card}
        if kept:
            card.update(kept, thresholds=(
                f"from --init {init}" + ("" if only == "inpainter" else ", not recalibrated "
                                         "for this detector: run "
                                         "benchmarks/calibrate_restore.py --update-card")))
    return trainer.export(run.out, task=TASK, card=card)
