"""Contrastive unpaired translation (CUT and FastCUT, Park et al. 2020) as a ``GanModule``.

CycleGAN keeps a translated photo faithful to its source by translating it back, which
costs a second generator, a second discriminator and three more generator passes per step.
CUT keeps it faithful with one generator: a patch of the painting must be recognisable, in
the generator's own encoder features, as the patch of the photo at the same place and not
as any other patch of that photo (PatchNCE, an InfoNCE loss over ``PATCHES`` locations at
several encoder depths, through a small projection head per depth). One generator, one
discriminator: on a CPU, about half of CycleGAN's time per step.

``fastcut`` is the paper's lighter variant: a larger PatchNCE weight, no identity term
(CUT also asks that a painting's patches map to themselves) and flip equivariance (the
photo is mirrored half the time and the features of its translation mirrored back).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan.losses import ANCHOR_BLUR, LOSSES, periodic_artefact_loss
from artgan.nn.blocks import PatchDiscriminator, ResidualBlock, ResnetGenerator
from artgan.train import AnchoredModule, StepContext

from .model import ARCHITECTURE, CUT_ARCHITECTURE, cut, cyclegan

PATCHES = 256  # locations per picture and depth that PatchNCE compares
TEMPERATURE = 0.07
PROJECTION = 256  # width of the projection heads
# the paper's settings of the two variants
VARIANTS = {
    "cut": {"nce_weight": 1.0, "nce_identity": True, "flip_equivariance": False},
    "fastcut": {"nce_weight": 10.0, "nce_identity": False, "flip_equivariance": True},
}


def encoder_layers(generator: ResnetGenerator) -> list[int]:
    """Indices into ``generator.net`` whose outputs PatchNCE compares: the stem and each
    downsampling (their ReLUs) and the middle residual block, as the paper's layers
    0, 4, 8, 12, 16 of a 9-block generator are, besides the picture itself (index -1)."""
    layers = [-1]
    blocks = []
    for index, module in enumerate(generator.net):
        if isinstance(module, ResidualBlock):
            blocks.append(index)
        elif isinstance(module, nn.ReLU) and not blocks:
            layers.append(index)
    if blocks:
        layers.append(blocks[len(blocks) // 2])
    return layers


def encode(generator: ResnetGenerator, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
    """The features of ``x`` at ``layers`` (``encoder_layers``), running only as far into
    the generator as the deepest of them."""
    features = [x] if -1 in layers else []
    for index, module in enumerate(generator.net[: max(layers) + 1]):
        x = module(x)
        if index in layers:
            features.append(x)
    return features


@contextmanager
def recording(generator: ResnetGenerator, layers: Sequence[int]) -> Iterator[list[Tensor]]:
    """The features at ``layers`` (``encoder_layers``, the picture itself left out) of
    whatever ``generator`` translates while the context is open, in order: the forward
    pass computes them anyway, and encoding the picture again would cost another pass."""
    features: list[Tensor] = []
    hooks = [generator.net[index].register_forward_hook(
                 lambda module, inputs, output: features.append(output))
             for index in layers if index >= 0]
    try:
        yield features
    finally:
        for hook in hooks:
            hook.remove()


def layer_channels(generator: ResnetGenerator, layers: Sequence[int]) -> list[int]:
    """The channel count of each of ``layers``' features."""
    with torch.no_grad():
        probe = torch.zeros(1, 3, 4 * generator.multiple, 4 * generator.multiple,
                            device=next(generator.parameters()).device)
        return [feature.shape[1] for feature in encode(generator, probe, layers)]


class ProjectionHeads(nn.Module):
    """One two-layer MLP per depth, mapping sampled feature vectors to the space where
    PatchNCE compares them (the paper's ``PatchSampleF``)."""

    def __init__(self, channels: Sequence[int], width: int = PROJECTION):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(c, width), nn.ReLU(inplace=True), nn.Linear(width, width))
            for c in channels
        )

    def forward(self, features: Sequence[Tensor], where: Sequence[Tensor]) -> list[Tensor]:
        """For each depth, the unit vectors (N, P, width) of the features at the flat
        positions ``where[depth]`` (P,)."""
        out = []
        for head, feature, positions in zip(self.heads, features, where, strict=True):
            flat = feature.flatten(2).transpose(1, 2)[:, positions]  # (N, P, C)
            out.append(F.normalize(head(flat.float()), dim=-1))
        return out


def patch_nce(queries: Sequence[Tensor], keys: Sequence[Tensor],
              temperature: float = TEMPERATURE) -> Tensor:
    """InfoNCE over patches, averaged over depths: each query's positive is the key at its
    own position, its negatives the keys at the picture's other positions."""
    losses = []
    for query, key in zip(queries, keys, strict=True):
        logits = torch.bmm(query, key.detach().transpose(1, 2)) / temperature  # (N, P, P)
        target = torch.arange(logits.shape[1], device=logits.device).expand(len(logits), -1)
        losses.append(F.cross_entropy(logits.flatten(0, 1), target.flatten()))
    return torch.stack(losses).mean()


class CUTModule(AnchoredModule):
    """One generator (photo -> painting), one PatchGAN discriminator, the projection heads;
    LSGAN by default, PatchNCE as the content term."""

    ema = ("a2b",)

    def __init__(
        self,
        generator: dict[str, Any],
        *,
        method: str = "cut",
        d_width: int = 64,
        d_layers: int = 3,
        d_padding: str = "valid",
        d_antialias: bool = False,
        lr: float = 2e-4,
        nce_weight: float | None = None,
        artefact_weight: float = 0.0,
        anchor_weight: float = 0.0,
        anchor_blur: float = ANCHOR_BLUR,
        d_warmup: int = 0,
        keep_reverse: bool = False,
        loss: str = "lsgan",
        seed: int = 0,
        init: dict[str, Tensor] | None = None,
        validation: Any = None,
    ):
        settings = VARIANTS[method]
        self.method = method
        self.config = dict(generator)
        self.discriminator = {"width": d_width, "n_layers": d_layers, "padding": d_padding,
                              "antialias": d_antialias}
        self.lr = lr
        self.nce_weight = settings["nce_weight"] if nce_weight is None else nce_weight
        self.nce_identity = settings["nce_identity"]
        self.artefact_weight = artefact_weight
        self.anchor_weight = anchor_weight
        self.anchor_blur = anchor_blur
        self.d_warmup = d_warmup
        self.flip_equivariance = settings["flip_equivariance"]
        self.loss = LOSSES.get(loss)
        self.seed = seed
        self.init = init
        self.keep_reverse = keep_reverse
        self.validation = validation
        self._generators: dict[torch.device, torch.Generator] = {}

    def shape_options(self) -> dict[str, Any]:
        return {"--width": self.config.get("width"), "--blocks": self.config.get("n_blocks"),
                "--upsample": self.config.get("upsample"),
                "--antialias": bool(self.config.get("antialias")),
                "--d-width": self.discriminator["width"],
                "--d-layers": self.discriminator["n_layers"], "--method": self.method}

    def networks(self) -> dict[str, nn.Module]:
        model = cut(**self.config)
        if self.init is not None:  # a cyclegan model's photo -> painting generator will do
            model.load_state_dict({key: value for key, value in self.init.items()
                                   if key.startswith("a2b.")})
        generator = model["a2b"]
        self.layers = encoder_layers(generator)
        self.hold(generator)
        return {
            "a2b": generator,
            "d_b": PatchDiscriminator(**self.discriminator),
            "heads": ProjectionHeads(layer_channels(generator, self.layers)),
        }

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        generator = chain(networks["a2b"].parameters(), networks["heads"].parameters())
        return {
            "generator": torch.optim.Adam(generator, lr=self.lr, betas=(0.5, 0.999)),
            "discriminator": torch.optim.Adam(networks["d_b"].parameters(), lr=self.lr,
                                              betas=(0.5, 0.999)),
        }

    def _random(self, step: StepContext, device: torch.device) -> torch.Generator:
        """The step's generator (patch positions, flips), so a resumed run draws what an
        uninterrupted one would."""
        if device not in self._generators:
            self._generators[device] = torch.Generator(device)
        seed = (self.seed * 1_000_003 + step.index) * 1009 + step.world.rank
        return self._generators[device].manual_seed(seed)

    def training_step(self, batch: Sequence[Tensor], step: StepContext) -> dict[str, Tensor]:
        real_a, real_b = batch
        nets = step.networks
        generator, heads = nets["a2b"], nets["heads"]
        random = self._random(step, real_a.device)
        flipped = self.flip_equivariance and bool(
            torch.rand((), generator=random, device=random.device) < 0.5)
        source = real_a.flip(-1) if flipped else real_a
        inputs = torch.cat([source, real_b]) if self.nce_identity else source
        warming_up = step.index < self.d_warmup
        with step.autocast(), recording(generator, self.layers) as recorded, \
                torch.set_grad_enabled(not warming_up):
            outputs = generator(inputs)
        fake_b = outputs[: len(real_a)]
        # PatchNCE's keys: the encoder features of the sources, which the pass above made
        seen = [inputs, *recorded] if -1 in self.layers else recorded
        if flipped:  # its features are of the mirrored photo: encode the photo itself
            with torch.no_grad(), step.autocast():
                photo_keys = encode(generator, real_a, self.layers)
        else:
            photo_keys = [feature[: len(real_a)] for feature in seen]

        with step.autocast():
            logits = nets["d_b"](step.augment(torch.cat([real_b, fake_b.detach()])))
        on_real, on_fake = logits.split([len(real_b), len(fake_b)])
        step.update_augment(on_real)
        d_loss = self.loss.d_loss(on_real, on_fake) / 2  # as the paper halves it
        step.backward(d_loss, "discriminator")
        if warming_up:
            return {"d_loss": d_loss.detach()}

        nets["d_b"].requires_grad_(False)
        try:
            with step.autocast():
                adversarial = self.loss.g_loss(nets["d_b"](step.augment(fake_b)))
                nce = self._nce(generator, heads, photo_keys, fake_b, random, flip_back=flipped)
                if self.nce_identity:
                    painting_keys = [feature[len(real_a):] for feature in seen]
                    same = self._nce(generator, heads, painting_keys, outputs[len(real_a):],
                                     random)
                    nce = (nce + same) / 2
                g_loss = adversarial + self.nce_weight * nce
                if self.artefact_weight:
                    mesh = periodic_artefact_loss(fake_b, real_a)
                    g_loss = g_loss + self.artefact_weight * mesh
                anchor = self.anchored(fake_b, source)
                if anchor is not None:
                    g_loss = g_loss + self.anchor_weight * anchor
            step.backward(g_loss, "generator")
        finally:
            nets["d_b"].requires_grad_(True)
        logs = {"d_loss": d_loss.detach(), "g_adv": adversarial.detach(), "nce": nce.detach()}
        if self.artefact_weight:
            logs["artefacts"] = mesh.detach()
        if anchor is not None:
            logs["anchor"] = anchor.detach()
        return logs

    def _nce(self, generator: ResnetGenerator, heads: ProjectionHeads, keys: list[Tensor],
             translated: Tensor, random: torch.Generator, flip_back: bool = False) -> Tensor:
        """PatchNCE between a source, given by its encoder features ``keys``, and its
        ``translated`` picture (whose features are mirrored back first where the source
        was mirrored before translating)."""
        queries = encode(generator, translated, self.layers)
        if flip_back:
            queries = [feature.flip(-1) for feature in queries]
        where = [torch.randint(q.shape[2] * q.shape[3], (min(PATCHES, q.shape[2] * q.shape[3]),),
                               generator=random, device=random.device).to(q.device)
                 for q in queries]
        return patch_nce(heads(queries, where), heads(keys, where))

    def validate(self, networks: dict[str, nn.Module]) -> float | None:
        return None if self.validation is None else self.validation(networks["a2b"])

    def fixed_inputs(self, batch: Sequence[Tensor]) -> list[Tensor]:
        return [images[:4] for images in batch]

    def sample(self, networks: dict[str, nn.Module], fixed: list[Tensor]) -> Tensor:
        """Rows of: photo, its painting, painting, what the generator makes of it."""
        a, b = fixed
        rows = [a, networks["a2b"](a), b, networks["a2b"](b)]
        return torch.stack([r.float() for r in rows], dim=1).flatten(0, 1)

    def export(self, networks: dict[str, nn.Module]) -> tuple[nn.Module, str, dict[str, Any]]:
        """The generator alone (a ``cut`` model), or with ``keep_reverse`` beside the --init
        CycleGAN model's painting -> photo generator, unchanged (a ``cyclegan`` model, so a
        one-way fine-tune of a style does not take ``--reverse`` away from it)."""
        if not self.keep_reverse:
            return (nn.ModuleDict({"a2b": networks["a2b"]}).eval(), CUT_ARCHITECTURE,
                    dict(self.config))
        both = cyclegan(**self.config)
        both.load_state_dict(self.init)
        both["a2b"] = networks["a2b"]
        return both.eval(), ARCHITECTURE, dict(self.config)
