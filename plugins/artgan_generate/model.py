"""FastGAN-style networks for unconditional generation from a few hundred images.

Why FastGAN (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis") rather than StyleGAN or a DCGAN: it was designed for 100-1000
training images and converges in hours on one GPU, which maps to minutes of H100 time and
about an hour of laptop CPU at 64-128 px. Two ideas carry it, both kept here:

* **skip-layer excitation** (SLE): a low-resolution feature map gates the channels of a
  high-resolution one, giving the generator a cheap long-range path (like a residual
  connection across scales) so gradients reach the early layers quickly;
* a **self-supervised discriminator**: small decoders must rebuild the real image (and a
  random quarter of it) from D's 8x8 features, so D learns a full description of the
  paintings instead of memorising a few tells, which is what makes it overfit on tiny sets.

Simplifications against the paper, each to keep sampling deterministic and the code small:
per-pixel noise injection is optional (``noise``) and, when sampling, reads one fixed noise
picture stored with the weights, so a seed still fully decides an image; no spectral norm
in G (it only regularises D's Lipschitz constant that matters); no second, low-resolution
discriminator branch; and L1 instead of LPIPS for reconstruction (LPIPS needs pretrained
weights that artgan never downloads).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from artgan.nn.blocks import BlurDownConv, BlurUpsample

SIZES = (32, 64, 128, 256)
ARCHITECTURE = "fastgan"

# Channels per resolution, as multiples of ``width`` (FastGAN's ``nfc`` table).
_CHANNELS = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25}


def channels(width: int, resolution: int) -> int:
    """Feature channels at ``resolution`` for a network of ``width`` (at least 1)."""
    return max(1, int(width * _CHANNELS[resolution]))


def check_size(size: int) -> None:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size}")


def _resolutions(size: int) -> list[int]:
    """4, 8, ..., size."""
    return [2**i for i in range(2, int(math.log2(size)) + 1)]


class SkipExcitation(nn.Module):
    """SLE: pool ``low`` to 4x4, squeeze it to one gate per channel of ``high``, multiply."""

    def __init__(self, c_low: int, c_high: int, spectral: bool = False):
        super().__init__()
        norm = spectral_norm if spectral else (lambda module: module)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            norm(nn.Conv2d(c_low, c_high, 4, bias=False)),
            nn.SiLU(),
            norm(nn.Conv2d(c_high, c_high, 1, bias=False)),
            nn.Sigmoid(),
        )

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        return high * self.gate(low)


class NoiseInjection(nn.Module):
    """Adds one Gaussian noise picture to every channel, times a learnt weight (0 at first).

    FastGAN's (and StyleGAN's) source of fine detail: texture drawn from noise needs no
    pattern tied to the position within an upsampled block, which is what a grid of dashes
    is. Training draws fresh noise for each picture; sampling (eval mode) reads ``fixed``, a
    noise picture drawn once from ``seed`` (each layer its own) and saved with the weights,
    so a latent's seed still decides an image and the exported network needs no noise input
    (StyleGAN2's "const" noise). The weight starts at 0, as in FastGAN: G learns how much
    noise each layer wants.
    """

    def __init__(self, resolution: int, seed: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        source = torch.Generator(device="cpu").manual_seed(seed)
        self.register_buffer("fixed", torch.randn(1, 1, resolution, resolution,
                                                  generator=source))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        else:
            noise = self.fixed.to(x.dtype)
        return x + self.weight.to(x.dtype) * noise


def _up(c_in: int, c_out: int, double: bool, resolution: int, antialias: bool = False,
        noise: bool = False) -> nn.Sequential:
    """Nearest 2x upsampling then conv-BN-GLU (twice when ``double``: FastGAN's UpBlockComp).

    GLU halves the channels, so each conv makes ``2 * c_out``; it gates features the way
    the paper found steadier than ReLU at tiny batch sizes. With ``antialias`` the upsampled
    features are blurred (``artgan.nn.blocks.blur``) before the conv sees them: nearest
    upsampling leaves 2x2 blocks, whose edges the conv can turn into a grid of dashes. With
    ``noise`` a double block adds ``NoiseInjection`` after each conv, as FastGAN's does.
    """
    layers: list[nn.Module] = [BlurUpsample() if antialias
                               else nn.Upsample(scale_factor=2, mode="nearest")]
    convs = [(c_in, c_out), (c_out, c_out)] if double else [(c_in, c_out)]
    for layer, (a, b) in enumerate(convs):
        layers.append(nn.Conv2d(a, 2 * b, 3, padding=1, bias=False))
        if noise and double:  # independent noise per layer, as in training
            layers.append(NoiseInjection(resolution, seed=2 * resolution + layer))
        layers += [nn.BatchNorm2d(2 * b), nn.GLU(1)]
    return nn.Sequential(*layers)


class FastGANGenerator(nn.Module):
    """Latent (N, latent_dim) -> images (N, 3, size, size) in [-1, 1].

    SLE connects 4->64, 8->128 and 16->256 px (each target at 16x its source), as far as
    ``size`` reaches. Sample in eval mode after ``standing_stats`` so each image depends only
    on its own latent, not on the rest of the batch. ``antialias`` blurs after every
    upsampling (no new weights); ``noise`` adds ``NoiseInjection`` to the double blocks.
    """

    def __init__(self, size: int = 128, width: int = 32, latent_dim: int = 256,
                 antialias: bool = False, noise: bool = False):
        super().__init__()
        check_size(size)
        self.size = size
        self.width = width
        self.latent_dim = latent_dim
        c4 = channels(width, 4)
        self.init = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, 2 * c4, 4, bias=False),
            nn.BatchNorm2d(2 * c4),
            nn.GLU(1),
        )
        self.ups = nn.ModuleDict()
        for res in _resolutions(size)[1:]:
            double = int(math.log2(res)) % 2 == 1  # 8, 32, 128: as in the paper
            self.ups[str(res)] = _up(channels(width, res // 2), channels(width, res), double,
                                     res, antialias, noise)
        self.excite = nn.ModuleDict({
            str(res): SkipExcitation(channels(width, res // 16), channels(width, res))
            for res in _resolutions(size) if res >= 64
        })
        self.to_rgb = nn.Conv2d(channels(width, size), 3, 3, padding=1, bias=False)

    def forward(self, z: Tensor) -> Tensor:
        features = {4: self.init(z.view(z.shape[0], -1, 1, 1))}
        x = features[4]
        for res in _resolutions(self.size)[1:]:
            x = self.ups[str(res)](x)
            if str(res) in self.excite:
                x = self.excite[str(res)](features[res // 16], x)
            features[res] = x
        return torch.tanh(self.to_rgb(x))


def _strided(antialias: bool) -> type[nn.Conv2d]:
    """The class of a strided convolution: with ``antialias``, one that blurs its input."""
    return BlurDownConv if antialias else nn.Conv2d


class _DownBlock(nn.Module):
    """FastGAN's DownBlockComp: a strided conv path averaged with an avg-pool shortcut."""

    def __init__(self, c_in: int, c_out: int, antialias: bool = False):
        super().__init__()
        self.main = nn.Sequential(
            spectral_norm(_strided(antialias)(c_in, c_out, 4, 2, 1, bias=False)),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
        )
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2),
            spectral_norm(nn.Conv2d(c_in, c_out, 1, bias=False)),
            nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.main(x) + self.shortcut(x)) / 2


class Decoder(nn.Module):
    """Rebuilds an image of ``out_size`` px from 8x8 discriminator features (self-supervision)."""

    def __init__(self, c_in: int, width: int, out_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = c_in
        for res in _resolutions(out_size)[2:]:  # 16, 32, ..., out_size
            c_out = channels(width, res)
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                spectral_norm(nn.Conv2d(c, 2 * c_out, 3, padding=1, bias=False)),
                nn.BatchNorm2d(2 * c_out),
                nn.GLU(1),
            ]
            c = c_out
        layers += [spectral_norm(nn.Conv2d(c, 3, 3, padding=1, bias=False)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class FastGANDiscriminator(nn.Module):
    """Images in [-1, 1] -> one logit per image; optionally reconstructions for the SSL loss.

    Features go from size/2 down to 4x4. SLE gates the 16, 8 and 4 px features from the
    ones 8x larger where they exist. With ``reconstruct=True`` the forward also returns
    ``(whole, part, quarter)``: the image rebuilt from the 8x8 features, one quarter of it
    rebuilt from the matching 8x8 crop of the 16x16 features, and which quarter (0-3);
    targets are the (augmented) input scaled to the reconstructions' sizes. ``antialias``
    blurs the input of every strided convolution.
    """

    def __init__(self, size: int = 128, width: int = 32, antialias: bool = False):
        super().__init__()
        check_size(size)
        self.size = size
        # D's features at resolution r use the channel count G uses at 2r.
        def c(res: int) -> int:
            return channels(width, 2 * res)

        self.stem = nn.Sequential(
            spectral_norm(_strided(antialias)(3, c(size // 2), 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2),
        )
        self.downs = nn.ModuleDict({
            str(res): _DownBlock(c(2 * res), c(res), antialias)
            for res in reversed(_resolutions(size // 4))
        })
        self.excite = nn.ModuleDict({
            str(res): SkipExcitation(c(8 * res), c(res), spectral=True)
            for res in (16, 8, 4) if 8 * res <= size // 2
        })
        self.logits = nn.Sequential(
            spectral_norm(nn.Conv2d(c(4), c(4), 1, bias=False)),
            nn.BatchNorm2d(c(4)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c(4), 1, 4, bias=False)),
        )
        # Reconstructions stop at 128 px, as in the paper: enough to force informative features.
        self.decode_whole = Decoder(c(8), width, min(size, 128))
        self.decode_part = Decoder(c(16), width, min(size // 2, 128))

    def forward(self, x: Tensor, reconstruct: bool = False):
        res = self.size // 2
        features = {res: self.stem(x)}
        h = features[res]
        while res > 4:
            res //= 2
            h = self.downs[str(res)](h)
            if str(res) in self.excite:
                h = self.excite[str(res)](features[8 * res], h)
            features[res] = h
        logits = self.logits(h).view(-1)
        if not reconstruct:
            return logits
        quarter = int(torch.randint(4, ()))
        row, col = divmod(quarter, 2)
        part = features[16][:, :, row * 8 : row * 8 + 8, col * 8 : col * 8 + 8]
        return logits, (self.decode_whole(features[8]), self.decode_part(part), quarter)


def quarter_of(images: Tensor, quarter: int) -> Tensor:
    """The quarter (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of ``images``."""
    half_h, half_w = images.shape[2] // 2, images.shape[3] // 2
    row, col = divmod(quarter, 2)
    return images[:, :, row * half_h : (row + 1) * half_h, col * half_w : (col + 1) * half_w]


@torch.no_grad()
def standing_stats(generator: FastGANGenerator, batches: int = 4, batch_size: int = 64,
                   seed: int = 0) -> None:
    """Re-estimate G's batch-norm statistics from its own outputs, then leave it in eval mode.

    BigGAN's "standing statistics": the running averages kept during training belong to
    the raw weights, not the EMA weights that get exported, and mismatched statistics show
    as washed-out or over-saturated samples. Averaging over many fresh batches fixes that.
    """
    device = next(generator.parameters()).device
    norms = [m for m in generator.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    source = torch.Generator(device="cpu").manual_seed(seed)
    generator.train()
    try:
        for _ in range(batches):
            generator(torch.randn(batch_size, generator.latent_dim, generator=source).to(device))
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        generator.eval()
