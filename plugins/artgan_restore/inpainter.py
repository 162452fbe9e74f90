"""The inpainting generator: fast Fourier convolutions (LaMa, Suvorov et al. 2022).

Why FFC rather than gated convolutions (DeepFill v2, Yu et al. 2019): filling a hole needs
context from across the window (the rhythm of brush strokes, a horizon line, the weave of
the canvas), and a convolution stack only sees far after many layers, so DeepFill adds a
contextual-attention layer with its own artefacts. An FFC block sends most channels through
a 1x1 convolution in the frequency domain, so every layer has an image-wide receptive field
at the cost of one FFT; the periodic textures of paintings (craquelure, canvas, hatching)
are exactly what the spectral branch represents compactly, and LaMa showed this generalises
to holes of 40 % and more with a small network. Gated convolutions would also double every
layer's weights for the gates, and the model must stay under 10 MB.

The network does not paint holes from nothing: it sees the picture with its holes already
filled smoothly (``fill.smooth_fill``, as good as OpenCV's Navier-Stokes inpainting), the
mask, and what the damaged pixels still show, and predicts a correction to the fill,
starting from none. Damage is not always a hole: under a stain, foxing or a thin crack the
painting is tinted or half covered, and a restorer works from what is left there. Trained
on both (free-form holes hiding the picture, synthetic damage over it), the network learns
when to trust those pixels. A full-resolution skip from the stem to the head carries the
picture's own fine detail around the 1/8 bottleneck, which would otherwise blur every fill
at its scale. The output is the whole
picture in [0, 1]; the caller keeps the known pixels (``composite``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan.nn.blocks import NarrowOutputConv, NearestUpConv, exporting
from artgan_restore import spectral
from artgan_restore.fill import smooth_fill


def _conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2,
                  padding_mode="reflect", bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class FourierUnit(nn.Module):
    """A 1x1 convolution over the real and imaginary parts of the 2-D spectrum.

    Runs in float32 whatever the autocast: half-precision FFTs are limited to power-of-two
    sizes and lose the small high-frequency coefficients. Exported, the transforms are
    matrix products (``spectral``), which runtimes run faster than their DFT operators.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(2 * channels)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        as_products = exporting()
        with torch.autocast(x.device.type, enabled=False):
            if as_products:
                real, imag = spectral.rfft2(x.float())
            else:
                spectrum = torch.fft.rfft2(x.float(), norm="ortho")
                real, imag = spectrum.real, spectrum.imag
            parts = F.relu(self.norm(self.conv(torch.cat([real, imag], dim=1))))
            real, imag = parts.chunk(2, dim=1)
            if as_products:
                return spectral.irfft2(real, imag, height, width)
            return torch.fft.irfft2(torch.complex(real, imag), s=(height, width), norm="ortho")


class SpectralTransform(nn.Module):
    """The global branch of an FFC: reduce, Fourier unit (with a skip), expand."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        hidden = c_out // 2
        self.reduce = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False),
                                    nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
        self.fourier = FourierUnit(hidden)
        self.expand = nn.Conv2d(hidden, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(x)
        return self.expand(x + self.fourier(x).to(x.dtype))


class FFC(nn.Module):
    """A fast Fourier convolution over (local, global) channel groups, each followed by
    batch norm and ReLU: local->local, local->global and global->local are 3x3 convolutions,
    global->global is the spectral transform."""

    def __init__(self, channels: int, global_ratio: float):
        super().__init__()
        self.global_channels = int(channels * global_ratio)
        c_g = self.global_channels
        c_l = channels - c_g

        def conv(c_in: int, c_out: int) -> nn.Conv2d:
            return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect", bias=False)

        self.local_to_local = conv(c_l, c_l)
        self.global_to_local = conv(c_g, c_l)
        self.local_to_global = conv(c_l, c_g)
        self.global_to_global = SpectralTransform(c_g, c_g)
        self.norm_local = nn.BatchNorm2d(c_l)
        self.norm_global = nn.BatchNorm2d(c_g)

    def forward(self, x: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x_l, x_g = x
        out_l = self.local_to_local(x_l) + self.global_to_local(x_g)
        out_g = self.local_to_global(x_l) + self.global_to_global(x_g)
        return F.relu(self.norm_local(out_l)), F.relu(self.norm_global(out_g))


class FFCBlock(nn.Module):
    """Two FFCs with a residual connection on both channel groups."""

    def __init__(self, channels: int, global_ratio: float):
        super().__init__()
        self.first = FFC(channels, global_ratio)
        self.second = FFC(channels, global_ratio)

    def forward(self, x: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        out_l, out_g = self.second(self.first(x))
        return x[0] + out_l, x[1] + out_g


def _transposed(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """The decoder's 2x upsampling of the first inpainters (LaMa's, with about half the
    multiply-adds of ``_resize``): kept so their model files load and run as trained."""
    return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1,
                              bias=False)


def _resize(c_in: int, c_out: int) -> NearestUpConv:
    """Bilinear 2x upsampling, then a 3x3 convolution (a resize-convolution: Odena et al.
    2016, "Deconvolution and checkerboard artifacts"), computed as ``NearestUpConv`` with its
    blur: nearest upsampling followed by the [1, 2, 1] blur is bilinear upsampling, and the
    blur commutes with the convolution, so only the outermost 2 px differ, at a quarter of
    the multiply-adds. A stride-2 transposed 3x3 convolution gives the four output phases
    1, 2, 2 and 4 taps, and the fills of an inpainter built on it carry a faint dotted grid
    4-8 px apart; here every output pixel has the same footprint."""
    return NearestUpConv(c_in, c_out, antialias=True)


UPSAMPLERS = {"resize": _resize, "transposed": _transposed}


def resize_from_transposed(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """An inpainter state dict with its transposed-convolution decoder turned into resize-
    convolution weights (``upsample="resize"``), to fine-tune from rather than start the
    decoder afresh (on the validation pictures, before any training: 20.98 -> 20.96 dB).

    A stride-2 transposed 3x3 kernel ``w`` scatters each input pixel over the 3x3 output
    pixels around it; after a 2x upsampling a 3x3 convolution gathers from the same
    footprint, so the kernel is ``w`` with its channel axes swapped and flipped in space
    (gather instead of scatter), divided by 4: each input pixel now reaches four outputs per
    tap instead of one, and the division keeps a flat input's mean response.
    """
    return {key: (value.transpose(0, 1).flip(-2, -1) / 4
                  if key.startswith("decoder.") and value.dim() == 4 else value)
            for key, value in state.items()}


class Inpainter(nn.Module):
    """LaMa-style generator: 7x7 stem, ``downs`` strided convolutions, ``blocks`` FFC residual
    blocks at 1/2**downs resolution, resize-convolutions back up (``upsample=
    "transposed"``: transposed convolutions, as LaMa and the first inpainters had), and a
    7x7 head over the decoder's output and the stem's full-resolution features. The head
    adds its output to the smooth fill's logits; it starts at zero, so an untrained
    inpainter returns the smooth fill.

    Input: (N, 3, H, W) damaged picture in [0, 1] and (N, 1, H, W) mask (1 = repaint); H and
    W must be multiples of ``multiple``. Output: the predicted picture in [0, 1], everywhere.
    """

    def __init__(self, width: int = 24, downs: int = 3, blocks: int = 6,
                 global_ratio: float = 0.75, upsample: str = "resize"):
        super().__init__()
        self.multiple = 2**downs
        self.stem = _conv_bn_relu(7, width, 7)
        layers: list[nn.Module] = []
        c = width
        for _ in range(downs):
            layers.append(_conv_bn_relu(c, c * 2, 3, stride=2))
            c *= 2
        self.encoder = nn.Sequential(*layers)
        self.global_channels = int(c * global_ratio)
        self.blocks = nn.ModuleList(FFCBlock(c, global_ratio) for _ in range(blocks))
        if upsample not in UPSAMPLERS:
            raise ValueError(f"upsample must be one of {sorted(UPSAMPLERS)}, got {upsample!r}")
        ups: list[nn.Module] = []
        for _ in range(downs):
            ups += [UPSAMPLERS[upsample](c, c // 2), nn.BatchNorm2d(c // 2),
                    nn.ReLU(inplace=True)]
            c //= 2
        self.decoder = nn.Sequential(*ups)
        self.head = NarrowOutputConv(2 * c, 3, 7, padding=3, padding_mode="reflect")
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        mask = mask.to(image.dtype)
        fill = smooth_fill(image, mask).to(image.dtype)
        damaged = (image * 2 - 1) * mask
        stem = self.stem(torch.cat([fill * 2 - 1, damaged, mask], dim=1))
        x = self.encoder(stem)
        split = x.shape[1] - self.global_channels
        pair = (x[:, :split], x[:, split:])
        for block in self.blocks:
            pair = block(pair)
        x = self.decoder(torch.cat(pair, dim=1))
        correction = self.head(torch.cat([x, stem], dim=1))
        return torch.sigmoid(_logit(fill.float()) + correction.float())


def _logit(x: Tensor, eps: float = 1e-3) -> Tensor:
    """``torch.logit(x, eps)`` spelt out as its kernel computes it: OpenVINO's converter
    has no translation for ``aten::logit``."""
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def composite(prediction: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Known pixels from ``image``, holes from ``prediction`` (``mask`` 1 = hole)."""
    return mask * prediction + (1 - mask) * image
