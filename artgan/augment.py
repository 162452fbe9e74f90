"""Differentiable augmentation of discriminator inputs: DiffAugment and adaptive (ADA) p.

With little data the discriminator memorises the training set. Augmenting *both* real and
fake images before D, with ops that pass gradients to the generator (Zhao et al. 2020,
"Differentiable Augmentation"), stops that without the augmentations leaking into G's
outputs. ``Augment`` can also tune its probability from D's overfitting (Karras et al.
2020, StyleGAN2-ADA).

Images are N x C x H x W in [-1, 1] (the range GAN code here uses); ops keep dtype and
device, and outputs may leave the range slightly, as in DiffAugment.

kornia is imported when an op first runs, not with this module: the ops are registered at
every start (``artgan.builtins``), and importing kornia took 0.1-0.2 s of each command, also
of those that never train.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from artgan.errors import ArtganError
from artgan.plugins import RegistryView

AugmentFn = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]
"""An op: ``op(x, mask, generator)`` transforms the samples of ``x`` where ``mask`` (N bools)
is set and returns the others unchanged. ``generator`` (on x's device) may be None."""


class RandomOp:
    """An op whose random parameters are drawn apart from their application (as in kornia).

    ``sample`` draws one set of parameters per sample and ``apply`` is then a deterministic,
    differentiable function of the image, so a draw can be replayed (gradcheck, debugging).
    """

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        out = self.apply(x, self.sample(x, generator))
        return torch.where(mask.view(-1, 1, 1, 1), out, x)


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(x.shape[0], device=x.device, generator=generator)


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    return values.to(x.dtype).view(-1, 1, 1, 1)


class Color(RandomOp):
    """DiffAugment colour: brightness +[-0.5, 0.5), saturation x[0, 2), contrast x[0.5, 1.5).

    Saturation scales around the channel mean and contrast around the image mean, so both
    work on any range and channel count (kornia's versions clip to [0, 1] or need RGB).
    """

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        return {
            "brightness": _uniform(x, generator) - 0.5,
            "saturation": _uniform(x, generator) * 2,
            "contrast": _uniform(x, generator) + 0.5,
        }

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        from kornia.enhance import adjust_brightness  # see the module's docstring

        x = adjust_brightness(x, params["brightness"].to(x.dtype), clip_output=False)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * _per_sample(params["saturation"], x) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * _per_sample(params["contrast"], x) + mean


class Translation(RandomOp):
    """Shift by whole pixels, up to ``ratio`` of the size each way, filling with zeros."""

    def __init__(self, ratio: float = 1 / 8):
        self.ratio = ratio

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        n, height, width = x.shape[0], x.shape[2], x.shape[3]
        max_x, max_y = int(width * self.ratio + 0.5), int(height * self.ratio + 0.5)
        shift_x = torch.randint(-max_x, max_x + 1, (n,), device=x.device, generator=generator)
        shift_y = torch.randint(-max_y, max_y + 1, (n,), device=x.device, generator=generator)
        return {"shift": torch.stack([shift_x, shift_y], dim=1)}

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        from kornia.geometry.transform import translate  # see the module's docstring

        shift = params["shift"].to(x.dtype)
        return translate(x, shift, mode="bilinear", padding_mode="zeros", align_corners=True)


class Cutout(RandomOp):
    """Zero one square (``ratio`` of height and width) at a random place, clipped at the edges."""

    def __init__(self, ratio: float = 0.5):
        self.ratio = ratio

    def _size(self, x: Tensor) -> tuple[int, int]:
        return int(x.shape[2] * self.ratio + 0.5), int(x.shape[3] * self.ratio + 0.5)

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        n, height, width = x.shape[0], x.shape[2], x.shape[3]
        size_y, size_x = self._size(x)
        # Centres range so that the square can overhang each edge by up to half its size.
        centre_y = torch.randint(
            0, height + 1 - size_y % 2, (n,), device=x.device, generator=generator
        )
        centre_x = torch.randint(
            0, width + 1 - size_x % 2, (n,), device=x.device, generator=generator
        )
        return {"top": centre_y - size_y // 2, "left": centre_x - size_x // 2}

    def apply(self, x: Tensor, params: dict[str, Tensor]) -> Tensor:
        size_y, size_x = self._size(x)
        rows = torch.arange(x.shape[2], device=x.device) - params["top"].view(-1, 1)
        cols = torch.arange(x.shape[3], device=x.device) - params["left"].view(-1, 1)
        inside_y = (rows >= 0) & (rows < size_y)
        inside_x = (cols >= 0) & (cols < size_x)
        hole = inside_y[:, :, None] & inside_x[:, None, :]
        return x * (~hole).unsqueeze(1).to(x.dtype)


AUGMENTATIONS = RegistryView("augmentation")
"""Every augmentation op by name: these three (from ``artgan.builtins``) and plugins'."""
BUILTIN_AUGMENTATIONS = {"color": Color(), "translation": Translation(), "cutout": Cutout()}


def parse_policy(policy: Sequence[str] | str | None) -> list[str]:
    """Split "color,translation" into names; None, "" and "none" mean no augmentation."""
    if policy is None:
        return []
    if isinstance(policy, str):
        policy = policy.split(",")
    names = [name.strip() for name in policy if name.strip()]
    return [] if [n.lower() for n in names] == ["none"] else names


class Augment(torch.nn.Module):
    """Applies each op of a policy to each sample with probability ``p``.

    Fixed ``p`` is DiffAugment. With ``ada_target``, ``p`` starts at 0 (the ``p`` argument is
    ignored) and ``update(real_logits)`` adapts it: every ``ada_interval`` calls, p moves by
    ``images_seen / (ada_kimg * 1000)`` up if the mean sign of D(real) exceeds the target,
    down if below, clamped to [0, 1]. State lives in buffers so a checkpoint restores it
    exactly, and it is updated on the device without synchronising with the host.
    """

    def __init__(
        self,
        policy: Sequence[str] | str = "color,translation,cutout",
        p: float = 1.0,
        ada_target: float | None = None,
        ada_interval: int = 4,
        ada_kimg: float = 100,
    ):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ArtganError(f"augmentation probability must be in [0, 1], got {p}")
        if ada_target is not None and not 0.0 <= ada_target <= 1.0:
            raise ArtganError(f"ADA target must be in [0, 1], got {ada_target}")
        if ada_interval < 1 or ada_kimg <= 0:
            raise ArtganError("ADA interval must be >= 1 and ADA kimg > 0")
        self.policy = parse_policy(policy)
        self.ops = [AUGMENTATIONS.get(name) for name in self.policy]
        self.ada_target = ada_target
        self.ada_interval = ada_interval
        self.ada_kimg = ada_kimg
        start = 0.0 if ada_target is not None else p
        self.register_buffer("probability", torch.tensor(start))
        self.register_buffer("ada_sign_sum", torch.tensor(0.0))
        self.register_buffer("ada_images", torch.tensor(0.0))
        self.register_buffer("ada_calls", torch.tensor(0, dtype=torch.int64))

    @classmethod
    def from_option(cls, text: str | None, ada_target: float | None = None) -> Augment:
        """Build from a CLI value such as "color,translation,cutout" ("none" or empty: identity)."""
        return cls(policy=parse_policy(text), ada_target=ada_target)

    @property
    def p(self) -> float:
        """Current probability (reads the device buffer, so it synchronises: use for logging)."""
        return float(self.probability)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for op in self.ops:
            mask = torch.rand(x.shape[0], device=x.device, generator=generator) < self.probability
            x = op(x, mask, generator)
        return x

    @torch.no_grad()
    def update(self, real_logits: Tensor) -> None:
        """Record D's logits on (augmented) real images; adapts p in ADA mode, else does nothing."""
        if self.ada_target is None:
            return
        signs = torch.sign(real_logits.detach().float()).reshape(real_logits.shape[0], -1)
        self.ada_sign_sum += signs.mean(dim=1).sum()
        self.ada_images += real_logits.shape[0]
        self.ada_calls += 1
        due = self.ada_calls % self.ada_interval == 0
        mean_sign = self.ada_sign_sum / self.ada_images
        step = torch.sign(mean_sign - self.ada_target) * self.ada_images / (self.ada_kimg * 1000)
        adjusted = (self.probability + step).clamp(0.0, 1.0)
        self.probability.copy_(torch.where(due, adjusted, self.probability))
        self.ada_sign_sum.masked_fill_(due, 0.0)
        self.ada_images.masked_fill_(due, 0.0)

    def extra_repr(self) -> str:
        mode = f"ada_target={self.ada_target}" if self.ada_target is not None else f"p={self.p}"
        return f"policy={','.join(self.policy) or 'none'}, {mode}"
