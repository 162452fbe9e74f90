"""Image-to-image GAN layers: a ResNet generator, a PatchGAN discriminator and a history pool.

These follow CycleGAN (Zhu et al. 2017) and pix2pix (Isola et al. 2017) with two changes that
matter in practice: the generator can upsample with nearest-neighbour + convolution (Odena et
al. 2016) instead of transposed convolutions, which avoids checkerboard artefacts, and the
discriminator can run without padding, so it judges only patches that lie fully inside the
image and has no way to tell border patches apart (a padded PatchGAN lets the generator learn
border-specific output such as stripes along the image edges).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

UPSAMPLING = ("nearest", "transposed")
PADDINGS = ("valid", "zero", "reflect")


def _conv_norm_relu(c_in: int, c_out: int, kernel: int, stride: int = 1,
                    antialias: bool = False) -> list[nn.Module]:
    """Reflection-padded convolution, instance norm and ReLU (conv bias is cancelled by IN);
    with ``antialias`` a strided convolution blurs its input first."""
    conv = BlurDownConv if antialias and stride > 1 else nn.Conv2d
    return [
        nn.ReflectionPad2d(kernel // 2),
        conv(c_in, c_out, kernel, stride=stride, bias=False),
        nn.InstanceNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]



def exporting() -> bool:
    """Whether the network is being exported or traced for another runtime (ONNX through
    dynamo, OpenVINO through the TorchScript tracer), where a few blocks take a form
    those runtimes run well instead of the one eager torch runs fastest."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()

def blur(x: Tensor) -> Tensor:
    """Each channel low-passed by the fixed [1, 2, 1] x [1, 2, 1] / 16 filter (reflect-padded).

    Its response is zero at the Nyquist frequency, so it removes exactly what makes a mesh:
    the period-2 patterns that a strided convolution aliases finer detail into, and that the
    four phases of a nearest-neighbour upsampling leave behind (Zhang 2019, "Making
    convolutional networks shift-invariant again")."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (taps[:, None] * taps[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernel, groups=x.shape[1])


class BlurUpsample(nn.Upsample):
    """Nearest-neighbour 2x upsampling low-passed by ``blur``: its 2x2 blocks would leave a
    period-2 pattern that the next convolution can turn into a grid. No parameters, so
    it can stand in for ``nn.Upsample`` without changing a network's weight names."""

    def __init__(self) -> None:
        super().__init__(scale_factor=2, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        return blur(super().forward(x))


class BlurDownConv(nn.Conv2d):
    """A strided convolution that low-passes its input first (``blur``), so detail finer
    than its output grid is smoothed away instead of aliased into a mesh. Its parameters are
    a plain ``nn.Conv2d``'s, so weights trained without the blur load into it."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(blur(x))


class ResidualBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with instance norm, added to the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_norm_relu(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class NearestUpConv(nn.Conv2d):
    """2x nearest-neighbour upsampling, 1-pixel reflection padding and a 3x3 convolution, with
    the same weights and result as those three layers but computed at the low resolution.

    Each output pixel of the upsampled image sees a 2x2 neighbourhood of the input, with taps
    that are sums of the 3x3 kernel's taps: the four output phases (even/odd row and column)
    become one 2x2 convolution with 4x the channels, each phase read at its own one-pixel
    offset and written to every other output pixel. Reflecting the upsampled image by one
    pixel equals replicating the small one, so the borders match exactly too. This never
    builds the large upsampled tensor and does 4 multiply-adds per output value instead of 9.

    With ``antialias`` the output is low-passed (``blur``), which takes out the period-2
    pattern that differences between the four phases leave.
    """

    PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))  # (row, column) offset of each output phase

    def __init__(self, c_in: int, c_out: int, bias: bool = False, antialias: bool = False):
        super().__init__(c_in, c_out, 3, bias=bias)
        self.antialias = antialias

    def forward(self, x: Tensor) -> Tensor:
        out = self.upsample(x)
        return blur(out) if self.antialias else out

    def phase_weight(self) -> Tensor:
        """(4 * out, in, 2, 2): the 2x2 kernel of each output phase, in ``PHASES`` order."""
        def split(k: Tensor, dim: int) -> tuple[Tensor, Tensor]:
            a, b, c = k.unbind(dim)
            return torch.stack([a, b + c], dim), torch.stack([a + b, c], dim)

        top, bottom = split(self.weight, 2)
        return torch.cat([*split(top, 3), *split(bottom, 3)])

    def upsample(self, x: Tensor) -> Tensor:
        if exporting():
            return self.scattered(x)
        bias = None if self.bias is None else self.bias.repeat(4)
        padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
        phases = F.conv2d(padded, self.phase_weight(), bias)  # (N, 4 * out, H + 1, W + 1)
        n, _, h, w = x.shape
        c = self.out_channels
        layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                  else torch.contiguous_format)
        out = torch.empty((n, c, 2 * h, 2 * w), dtype=phases.dtype, device=phases.device,
                          memory_format=layout)
        for i, (dy, dx) in enumerate(self.PHASES):
            out[:, :, dy::2, dx::2] = phases[:, i * c:(i + 1) * c, dy:dy + h, dx:dx + w]
        return out

    def scattered(self, x: Tensor) -> Tensor:
        """``upsample`` in the form exporters translate well, used only while exporting: one
        stride-2 transposed convolution with a 4x4 kernel over the replicate-padded input.
        Along each axis the phases' taps (a, b + c) and (a + b, c) of the 3x3 kernel's
        (a, b, c) are one scatter kernel (c, b + c, a + b, a), so this does the same 4
        multiply-adds per output value as ``upsample``, as one native operation. The
        strided writes above become scatters (16 ScatterND per generator in ONNX); slicing
        each phase and stacking them ran as reference Concat and Slice kernels in OpenVINO;
        one 3x3 convolution giving the phases aligned, woven by a DepthToSpace, did 9
        multiply-adds (OpenVINO, one thread of an AMD EPYC: the style generator at 1024 px
        2.09 -> 1.78 s, the restore inpainter 0.61 -> 0.54 s for 16 windows)."""
        def scatter(k: Tensor, dim: int) -> Tensor:
            a, b, c = k.unbind(dim)
            return torch.stack([c, b + c, a + b, a], dim)

        kernel = scatter(scatter(self.weight, 2), 3).transpose(0, 1)  # (in, out, 4, 4)
        h, w = x.shape[-2:]
        out = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, stride=2)
        # the reshape states the channel count, which OpenVINO's shape inference cannot
        # read through a kernel computed from the weights (an instance norm after it needs it)
        out = out[..., 3:3 + 2 * h, 3:3 + 2 * w].reshape(-1, self.out_channels, 2 * h, 2 * w)
        return out if self.bias is None else out + self.bias[:, None, None]


class NarrowOutputConv(nn.Conv2d):
    """A convolution to a few channels (a network's last, to a picture's three), with a
    plain ``nn.Conv2d``'s weights and result, exported in a form OpenVINO runs twice as fast.

    OpenVINO's CPU convolutions compute output channels in blocks of 16, so a 7x7 kernel to
    3 channels costs what one to 16 does. While exporting (``exporting``) the convolution is
    split by kernel rows: a 1 x k convolution gives one channel per output channel and row
    (3 x 7 = 21, which fill the blocks), and a k x 1 convolution, one group per output
    channel, adds each row's sums at its offset. The same products, added in another order
    (the style generator's last layer at 1024 px, OpenVINO bf16 on one thread of an AMD
    EPYC: 0.28 -> 0.14 s; the whole generator stays 0.16/255 from fp32 torch on average).
    """

    def forward(self, x: Tensor) -> Tensor:
        if exporting() and self.groups == 1 and self.stride == (1, 1) and \
                self.dilation == (1, 1) and isinstance(self.padding, tuple):
            return self.by_rows(x)
        return super().forward(x)

    def by_rows(self, x: Tensor) -> Tensor:
        """The convolution as a 1 x k one to (output channel, kernel row) and a k x 1 sum."""
        out, _, rows, _ = self.weight.shape
        pad_h, pad_w = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            pad_h = pad_w = 0
        by_row = self.weight.transpose(1, 2).reshape(out * rows, -1, 1, self.weight.shape[-1])
        partial = F.conv2d(x, by_row, padding=(pad_h, pad_w))
        # channel (o, u) of ``partial`` is row u of output o, added in at row offset u
        adder = torch.eye(rows, dtype=x.dtype, device=x.device).view(1, rows, rows, 1)
        return F.conv2d(partial, adder.expand(out, -1, -1, -1), self.bias, groups=out)


def _upsample(c_in: int, c_out: int, mode: str, antialias: bool = False) -> list[nn.Module]:
    """2x upsampling, instance norm, ReLU; "nearest" is nearest-neighbour + 3x3 convolution,
    which cannot produce the checkerboard pattern of (uneven-overlap) transposed convolutions
    (with ``antialias``, nor any other period-2 pattern)."""
    if mode == "nearest":
        up: nn.Module = NearestUpConv(c_in, c_out, antialias=antialias)
    else:
        up = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False)
    return [up, nn.InstanceNorm2d(c_out), nn.ReLU(inplace=True)]


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: 7x7 stem, strided downsampling, residual blocks, upsampling, 7x7 out.

    Fully convolutional, so it runs on any size that is a multiple of ``2 ** n_down``; images
    in and out are in [-1, 1] (tanh output). ``antialias`` blurs before each downsampling
    and after each (nearest) upsampling; it adds no weights, so a model trained without it
    can be fine-tuned with it.
    """

    def __init__(
        self,
        width: int = 32,
        n_blocks: int = 6,
        n_down: int = 2,
        upsample: str = "nearest",
        channels: int = 3,
        antialias: bool = False,
    ):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, not {upsample!r}")
        self.n_down = n_down
        layers = _conv_norm_relu(channels, width, 7)
        c = width
        for _ in range(n_down):
            layers += _conv_norm_relu(c, c * 2, 3, stride=2, antialias=antialias)
            c *= 2
        layers += [ResidualBlock(c) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += _upsample(c, c // 2, upsample, antialias)
            c //= 2
        layers += [nn.ReflectionPad2d(3), NarrowOutputConv(c, channels, 7)]
        self.net = nn.Sequential(*layers)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.n_down

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.net(x))


class UnitRange(nn.Module):
    """A generator of [-1, 1] pictures from [-1, 1] pictures as one on [0, 1] pictures, what
    pipelines and exported files run: converting inside, tile by tile, saves a full copy of
    a large picture. (``image``: the exported input's name.)"""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: Tensor) -> Tensor:
        return (self.generator(image * 2 - 1) + 1) / 2


class UnitRangeFromLatents(nn.Module):
    """Latents -> pictures in [0, 1] (what ``GeneratorPipeline.process`` returns), for export;
    ``z``: the exported input's name."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor) -> Tensor:
        return (self.generator(z) + 1) / 2


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix): a map of real/fake logits, one per overlapping patch of a [-1, 1] image.

    With the defaults (``width=64, n_layers=3``) each logit sees a 70x70 patch. ``padding``
    ``"valid"`` uses no padding at all, so only patches fully inside the image are judged;
    ``"zero"`` is the original. ``antialias`` blurs the input of each strided convolution,
    so the discriminator cannot reward a generator for detail that only its aliasing sees.
    """

    def __init__(
        self, width: int = 64, n_layers: int = 3, padding: str = "valid", channels: int = 3,
        antialias: bool = False,
    ):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, not {padding!r}")

        def conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            kind = BlurDownConv if antialias and stride > 1 else nn.Conv2d
            if padding == "valid":
                return [kind(c_in, c_out, 4, stride=stride)]
            mode = "zeros" if padding == "zero" else "reflect"
            return [kind(c_in, c_out, 4, stride=stride, padding=1, padding_mode=mode)]

        layers = conv(channels, width, 2) + [nn.LeakyReLU(0.2, inplace=True)]
        c = width
        for i in range(1, n_layers + 1):
            c_out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += conv(c, c_out, stride)
            layers += [nn.InstanceNorm2d(c_out), nn.LeakyReLU(0.2, inplace=True)]
            c = c_out
        layers += conv(c, 1, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def min_size(self) -> int:
        """The smallest input side that gives a 2x2 logit map (instance norm needs more than one
        value per channel, so a single-logit map is not enough)."""
        size = 2
        for layer in reversed(self.net):
            if isinstance(layer, nn.Conv2d):
                pad = 2 * layer.padding[0]
                size = (size - 1) * layer.stride[0] + layer.kernel_size[0] - pad
        return size


class HistoryPool:
    """Shrivastava et al.'s image buffer: the discriminator sees older fakes half the time.

    Keeps up to ``size`` past generated images; each queried image is returned as is or, with
    probability 1/2 once the pool is full, swapped for a random stored one. Stabilises
    training because D cannot just track the generator's latest mode.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None):
        self.size = size
        self.generator = generator
        self.images: list[Tensor] = []

    def state_dict(self) -> dict[str, Tensor]:
        """The stored images, for a checkpoint."""
        return {"images": torch.cat(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.images = [image.unsqueeze(0).clone() for image in state["images"]]

    def __call__(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
                continue
            if torch.rand((), generator=self.generator).item() < 0.5:
                index = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[index].to(image.device).clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out)
