"""Named adversarial losses and the shared regularisers and reconstruction terms.

Every task trains with the same few GAN objectives, so they live here under names
(``LOSSES``) that a CLI option or a plugin can pick. All terms are computed in float32,
even under autocast, because low-precision logits make softplus and squared terms
lose the small differences that drive training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from artgan.plugins import RegistryView


class AdversarialLoss:
    """A GAN objective: what the discriminator minimises and what the generator minimises.

    Logits may have any shape (one per image, or a PatchGAN map); terms are means over
    every element.
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        raise NotImplementedError


class NonSaturatingLoss(AdversarialLoss):
    """Binary cross-entropy on logits (Goodfellow et al.), with the non-saturating G loss.

    Written with softplus: -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return F.softplus(-fake_logits.float()).mean()


class LeastSquaresLoss(AdversarialLoss):
    """LSGAN (Mao et al.): squared distance to target 1 for real, 0 for fake.

    The discriminator loss is the plain sum of both terms (no 1/2 factor).
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return (real_logits.float() - 1).square().mean() + fake_logits.float().square().mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return (fake_logits.float() - 1).square().mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (Lim & Ye; used by SAGAN/BigGAN): D only learns from margin violations."""

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


class WassersteinLoss(AdversarialLoss):
    """Wasserstein critic loss; pair it with ``gradient_penalty`` (WGAN-GP)."""

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.float().mean() - real_logits.float().mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


LOSSES = RegistryView("loss")
"""Every adversarial loss by name: these four (from ``artgan.builtins``) and plugins'."""
BUILTIN_LOSSES = {"nonsaturating": NonSaturatingLoss(), "lsgan": LeastSquaresLoss(),
                  "hinge": HingeLoss(), "wgan": WassersteinLoss()}


def _per_sample_grad(outputs: Tensor, inputs: Tensor) -> Tensor:
    """d(sum of outputs)/d(inputs), kept in the graph so a penalty on it can be trained."""
    (grad,) = torch.autograd.grad(outputs.float().sum(), inputs, create_graph=True)
    return grad.float().flatten(1)


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al.): mean of (||grad D(x_hat)|| - 1)^2 on random interpolates.

    ``real`` and ``fake`` are detached, so the penalty trains only the discriminator.
    Scale it by the usual lambda (10) yourself.
    """
    alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(alpha_shape, device=real.device, generator=generator).to(real.dtype)
    mixed = torch.lerp(fake.detach(), real.detach(), alpha).requires_grad_(True)
    grad = _per_sample_grad(discriminator(mixed), mixed)
    return (grad.norm(dim=1) - 1).square().mean()


def r1_penalty(real_logits: Tensor, real_images: Tensor) -> Tensor:
    """R1 (Mescheder et al.): mean over the batch of ||grad D(real)||^2 per sample.

    ``real_images`` must have had ``requires_grad_(True)`` before D saw them. The usual
    gamma/2 factor is *not* applied: multiply by it yourself (e.g. ``gamma / 2 * r1``).
    """
    if not real_images.requires_grad:
        raise ValueError("r1_penalty needs real_images.requires_grad_(True) before D is run")
    return _per_sample_grad(real_logits, real_images).square().sum(dim=1).mean()


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    """CycleGAN cycle consistency: L1 between G_BA(G_AB(a)) and a."""
    return F.l1_loss(reconstructed.float(), original.float())


def identity_loss(same: Tensor, original: Tensor) -> Tensor:
    """CycleGAN identity term: L1 between G_AB(b) and b, which keeps colours in place."""
    return F.l1_loss(same.float(), original.float())


def periodic_artefact_loss(images: Tensor, reference: Tensor) -> Tensor:
    """How far generated ``images`` score above ``reference`` pictures (their sources, or
    real ones) on ``artgan.metrics.periodic_artefacts``, differentiable: a penalty on the
    mesh or dot grid a generator learns. The adversarial loss does not remove it, since a
    discriminator with strided convolutions hardly sees patterns locked to its own sampling
    grid. Pictures of at least 128 px are scored an octave lower too
    (``metrics.periodic_lattice``'s band), and the two excesses add up: penalised on the
    fine mesh alone, generators moved their pattern to a lattice of dashes 16 px apart.

    Only the excess over the references' mean score counts: every natural picture has a
    few chance peaks, and pushing below that flattens texture, which a brush stroke needs.
    The score is a share of each tile's fine-detail power, so the gradient cannot lower it
    by fading a channel's detail altogether: with the share's total held constant
    (peaks-only), fine-tunes of the styles turned their pictures grey (colour) or soft
    (luminance). At least 64 px a side.
    """
    from artgan.metrics import (  # kornia: only when training uses it
        LATTICE_PERIODS,
        LATTICE_TILE,
        periodic_artefact_shares,
    )

    mesh: dict[str, Any] = {}  # periodic_artefact_shares' defaults
    lattice = {"tile": LATTICE_TILE, "periods": LATTICE_PERIODS}
    smallest = min(*images.shape[-2:], *reference.shape[-2:])
    bands = [mesh, lattice] if smallest >= LATTICE_TILE else [mesh]

    def excess(band: dict[str, Any]) -> Tensor:
        with torch.no_grad():
            floor = periodic_artefact_shares(reference.float(), **band).mean()
        return (periodic_artefact_shares(images.float(), **band) - floor).clamp(min=0).mean()

    return sum(excess(band) for band in bands)


ANCHOR_BLUR = 3.0  # px: keeps 6 % of a period of 8 px (the mesh band's longest), half of 16 px


def anchor_loss(images: Tensor, anchors: Tensor, blur: float = ANCHOR_BLUR) -> Tensor:
    """Mean L1 between ``images`` and ``anchors`` (what the model being fine-tuned made of
    the same inputs), both blurred by a Gaussian of ``blur`` px (0: not blurred).

    A fine-tune against a new discriminator drifts from the palette and strokes the old one
    taught; tying the picture to the start resists that. Blurred, only the coarse picture
    is tied, and the fine detail below the blur, where a mesh or dot grid lies, stays free
    to change. Computed in float32 whatever the autocast: the drift it measures is small.
    """
    with torch.autocast(images.device.type, enabled=False):
        difference = images.float() - anchors.detach().float()
        if not blur:
            return difference.abs().mean()
        # the blur is linear: blurring the difference is the difference of the blurs. It is
        # compared only where the blur sees no border (padding would bias a mesh's phase
        # there); on pictures under 19 px (at 3 px) the kernel is cut to fit
        radius = min(int(3 * blur + 0.5), (min(images.shape[-2:]) - 1) // 2)
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
        kernel = torch.exp(-taps**2 / (2 * blur**2))
        kernel = kernel / kernel.sum()
        channels = images.shape[1]
        rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
        cols = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
        blurred = F.conv2d(F.conv2d(difference, rows, groups=channels), cols, groups=channels)
        return blurred.abs().mean()


class AnchorLoss:
    """``anchor_loss`` against a frozen copy of a generator as a fine-tune starts (the
    ``--anchor-weight`` of style and generate training): called with what the generator
    made and its inputs, it runs the copy on the same inputs. The copy is never trained and
    runs in whatever mode the generator does, so a batch-norm generator and its start
    normalise a batch alike. Its weights go into the training checkpoints
    (``state_dict``), so a resumed run is held to the start it began with, even where the
    ``--init`` model it names has changed since (a shipped model updated)."""

    def __init__(self, generator: torch.nn.Module, blur: float = ANCHOR_BLUR):
        self.start = deepcopy(generator).requires_grad_(False)
        self.blur = blur

    def __call__(self, generated: Tensor, inputs: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.start.to(inputs.device)(inputs)
        return anchor_loss(generated, target, self.blur)

    def state_dict(self) -> dict[str, Tensor]:
        return dict(self.start.state_dict())  # the checkpoint copies them to the CPU

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.start.load_state_dict(state)


def reconstruction_loss(output: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """L1 between output and target, optionally only where ``mask`` is set.

    ``mask`` (values in [0, 1], broadcastable to ``output``, e.g. N x 1 x H x W) weights each
    element; the sum is divided by the mask's total weight over all channels, so the result
    is the mean L1 inside the mask and does not shrink with the hole size. An empty mask
    gives 0.
    """
    diff = (output.float() - target.float()).abs()
    if mask is None:
        return diff.mean()
    weight = mask.float().expand_as(diff)
    return (diff * weight).sum() / weight.sum().clamp_min(1.0)


def feature_matching_loss(
    real_features: Sequence[Tensor], fake_features: Sequence[Tensor]
) -> Tensor:
    """Mean over layers of L1 between discriminator features of fake and (detached) real images.

    Used by pix2pixHD-style training; real features are detached so only G learns from it.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise ValueError(
            f"feature_matching_loss needs equal, non-empty feature lists, "
            f"got {len(real_features)} real and {len(fake_features)} fake"
        )
    terms = [
        F.l1_loss(fake.float(), real.detach().float())
        for real, fake in zip(real_features, fake_features, strict=True)
    ]
    return torch.stack(terms).mean()
