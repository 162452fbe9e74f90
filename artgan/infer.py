"""Run a fully convolutional image -> image network on images of any size, fast and seamlessly.

Large images are cut into overlapping tiles whose outputs are blended with raised-cosine
weights (``artgan.tiles.run_tiled``, also importable from here; ``artgan.tiles`` holds all of
artgan's tiling), so peak memory depends on the tile, not the image. Instance normalisation would
make every tile look different (each tile would get its own statistics), so before tiling the
per-layer instance-norm statistics are measured once on a downscaled copy of the whole image
and then frozen for all tiles; frozen statistics are a per-channel affine map, which is folded
into the preceding convolution. Tiles then agree with each other, but the statistics of a
shrunk copy are not those of the full-size picture, so a tiled result differs from a one-pass
result, the more the smaller the copy: that, not the blending, is almost all of the difference
(the README's "Style transfer" gives figures; ``tests/test_infer.py`` checks them).
``translate`` measures them at the tile size unless told otherwise, so that memory stays
bounded by the tile; a backend that needs less memory per pixel runs larger pictures in one
pass (``Backend.fits_whole``). Networks run in channels-last layout under inference mode, in
bfloat16 autocast where the hardware computes it natively (CUDA, CPUs with AMX or AVX512-BF16).

Pictures may stay uint8 (0..255, read as [0, 1]; a quarter of float32's size) wherever they
are: each tile, and each band of rows being shrunk, is converted to float
(``artgan.convert.to_float``) on the network's device on its own, and tiles are blended in
float one band of tile rows at a time, each band rounded to uint8 once finished (over the
picture itself, if asked), so no float copy of a whole large picture is ever made.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from artgan import cpu
from artgan.convert import output_dtype, quantize_, to_float
from artgan.errors import ArtganError
from artgan.nn.blocks import exporting
from artgan.tiles import run_tiled

Stats = list[tuple[Tensor, Tensor]]
_BAND_ROWS = 256  # rows of a picture shrunk at a time


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA, then MPS, then the CPU; unavailable devices are a user error.

    (Kept apart from the training code so that inference does not import it.)
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ArtganError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ArtganError(f"device {name!r} asked for, but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ArtganError("device 'mps' asked for, but MPS is not available")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where it is computed natively (faster), else ``None`` (stay in float32).

    CPUs without AVX512-BF16 or AMX emulate bfloat16 convolutions, which is slower than fp32.
    """
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None
    if device.type == "cpu" and cpu.has_native_bf16():  # one rule, as OpenVINO's
        return torch.bfloat16
    return None


def prepare(network: nn.Module, device: torch.device) -> nn.Module:
    """Put ``network`` in eval mode, channels-last layout, on ``device`` (in place)."""
    return network.eval().to(device=device, memory_format=torch.channels_last)


class InferenceInstanceNorm(nn.Module):
    """Stands in for ``nn.InstanceNorm2d`` while inferring.

    Live, it normalises with the input's own statistics through ``group_norm`` (one fused
    kernel that keeps channels-last layout, unlike ``instance_norm``); with ``record`` set it
    also keeps the statistics it used; with ``frozen`` (mean, rstd) set it applies those.
    """

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        self.eps = norm.eps
        self.weight = norm.weight
        self.bias = norm.bias
        self.record = False
        self.recorded: tuple[Tensor, Tensor] | None = None
        self.frozen: tuple[Tensor, Tensor] | None = None

    def scale_shift(self) -> tuple[Tensor, Tensor]:
        """The frozen normalisation as ``x * scale + shift``, each of shape (C,)."""
        assert self.frozen is not None
        mean, rstd = self.frozen
        scale = rstd if self.weight is None else rstd * self.weight.float()
        shift = -mean * scale
        return scale, shift if self.bias is None else shift + self.bias.float()

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if self.frozen is not None:
            scale, shift = self.scale_shift()
            shape = (1, c, 1, 1)
            return torch.addcmul(shift.view(shape).to(x.dtype), x, scale.view(shape).to(x.dtype))
        if not self.record:
            return F.group_norm(x, c, self.weight, self.bias, self.eps)
        if exporting():  # OpenVINO has no native_group_norm: the same sums, spelt out
            mean = x.float().mean(dim=(2, 3))
            rstd = torch.rsqrt(x.float().var(dim=(2, 3), unbiased=False) + self.eps)
            out = F.group_norm(x.float(), c, self.weight, self.bias, self.eps)
        else:
            out, mean, rstd = torch.native_group_norm(
                x.float(), self.weight, self.bias, n, c, h * w, c, self.eps
            )
        self.recorded = (mean.view(n, c).float(), rstd.view(n, c).float())
        return out.to(x.dtype)


def _is_instance_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats


@contextmanager
def _swapped(network: nn.Module, swaps: list[tuple[nn.Module, str, nn.Module]]) -> Iterator[None]:
    """Replace ``parent.name`` by each given module, and put the originals back afterwards."""
    originals = [(parent, name, getattr(parent, name)) for parent, name, _ in swaps]
    try:
        for parent, name, module in swaps:
            setattr(parent, name, module)
        yield
    finally:
        for parent, name, module in reversed(originals):
            setattr(parent, name, module)


@contextmanager
def inference_norms(network: nn.Module) -> Iterator[list[InferenceInstanceNorm]]:
    """Swap every instance norm of ``network`` for an ``InferenceInstanceNorm`` (in forward order
    of registration) for the duration of the block."""
    swaps = [
        (parent, name, InferenceInstanceNorm(child))
        for parent in network.modules()
        for name, child in parent.named_children()
        if _is_instance_norm(child)
    ]
    with _swapped(network, swaps):
        yield [module for _, _, module in swaps]


class Backend(Protocol):
    """A network compiled by another runtime (``artgan.backends``), as ``translate`` runs it."""

    def fits_whole(self, height: int, width: int, tile: int) -> bool:
        """Whether a (padded) picture runs in one pass, with its own statistics, given
        ``translate``'s ``tile``: the largest whose one pass fits the backend's memory bound."""

    def __call__(self, images: Tensor) -> Tensor:
        """Outputs of a float batch, each image normalised with its own statistics."""

    def frozen(self, stats: Stats) -> Callable[[Tensor], Tensor]:
        """What runs a batch of tiles with ``stats`` in every instance norm."""

    def stats(self, image: Tensor) -> Stats:
        """``instance_norm_stats`` of one float picture (1, C, H, W), measured there."""


@contextmanager
def _running(network: nn.Module, backend: Backend | None,
             stats: Stats | None = None) -> Iterator[Callable[[Tensor], Tensor]]:
    """What runs ``network`` (on ``backend`` if given) with each image's own instance-norm
    statistics, or with ``stats`` frozen."""
    if backend is not None:
        yield backend if stats is None else backend.frozen(stats)
    elif stats is None:
        with inference_norms(network):
            yield network
    else:
        with frozen_instance_norm(network, stats) as frozen:
            yield frozen


def resize(image: Tensor, size: tuple[int, int], device: torch.device) -> Tensor:
    """``image`` (N, C, H, W) resized to ``size`` (antialiased bilinear), as float on ``device``.

    The width is resized a band of rows at a time (rows are independent), then the height:
    the same two passes, to the bit, as one ``F.interpolate`` call, but a uint8 picture is
    never converted to float whole.
    """
    height, width = size

    def scaled(values: Tensor, to: tuple[int, int]) -> Tensor:
        return F.interpolate(values, size=to, mode="bilinear", antialias=True,
                             align_corners=False)

    bands = [scaled(to_float(band.to(device)), (band.shape[-2], width))
             for band in image.split(_BAND_ROWS, dim=-2)]
    return scaled(torch.cat(bands, dim=-2), (height, width))


def _downscale(image: Tensor, size: int, multiple: int, device: torch.device) -> Tensor:
    """Shrink so the longer side is at most ``size`` (never enlarge); sides are rounded to
    ``multiple``. The result is float on ``device``."""
    h, w = image.shape[-2:]
    factor = min(1.0, size / max(h, w))
    th = max(multiple, round(h * factor / multiple) * multiple)
    tw = max(multiple, round(w * factor / multiple) * multiple)
    if (th, tw) == (h, w):
        return to_float(image.to(device))
    return resize(image, (th, tw), device)


def instance_norm_stats(
    network: nn.Module,
    image: Tensor,
    size: int = 1024,
    multiple: int = 4,
    device: torch.device | None = None,
    backend: Backend | None = None,
) -> Stats:
    """Per-layer instance-norm (mean, rstd) of one image (1, C, H, W), measured on a copy whose
    longer side is at most ``size`` on ``device`` (default: the image's), by ``backend`` if
    given; the list follows ``inference_norms``' order."""
    small = _downscale(image, size, multiple, device or image.device)
    if backend is not None:
        return backend.stats(small)
    small = small.contiguous(memory_format=torch.channels_last)
    with inference_norms(network) as norms:
        for norm in norms:
            norm.record = True
        network(small)
        return [norm.recorded for norm in norms]  # type: ignore[misc]


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, norm: InferenceInstanceNorm) -> nn.Module:
    """A copy of ``conv`` whose weights and bias include the frozen norm that follows it."""
    scale, shift = norm.scale_shift()
    folded = copy.copy(conv)
    folded._parameters = {}
    axis = 0 if isinstance(conv, nn.Conv2d) else 1
    shape = [1] * conv.weight.dim()
    shape[axis] = -1
    weight = conv.weight.float() * scale.view(shape)
    bias = shift if conv.bias is None else conv.bias.float() * scale + shift
    folded.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
    folded.bias = nn.Parameter(bias.to(conv.weight.dtype), requires_grad=False)
    return folded


def _foldable(module: nn.Module) -> bool:
    return isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups == 1


@contextmanager
def frozen_instance_norm(
    network: nn.Module, stats: Stats, fold: bool = True
) -> Iterator[nn.Module]:
    """Within the block every instance norm of ``network`` uses ``stats`` instead of its input's.

    With ``fold``, a norm that directly follows a convolution inside an ``nn.Sequential`` is
    merged into that convolution's weights, which removes a full pass over the activations.
    """
    with inference_norms(network) as norms:
        if len(norms) != len(stats):
            raise ValueError(f"{len(stats)} statistics for {len(norms)} instance norms")
        for norm, (mean, rstd) in zip(norms, stats, strict=True):
            if mean.shape[0] != 1:
                raise ValueError("frozen statistics must come from a single image")
            norm.frozen = (mean[0], rstd[0])
        swaps: list[tuple[nn.Module, str, nn.Module]] = []
        if fold:
            for parent in network.modules():
                if not isinstance(parent, nn.Sequential):
                    continue
                children = list(parent.named_children())
                pairs = zip(children, children[1:], strict=False)
                for (conv_name, conv), (norm_name, norm) in pairs:
                    if _foldable(conv) and isinstance(norm, InferenceInstanceNorm):
                        swaps += [(parent, conv_name, _fold(conv, norm)),
                                  (parent, norm_name, nn.Identity())]
        with _swapped(network, swaps):
            yield network


def translate(
    network: nn.Module,
    images: Tensor,
    *,
    tile: int = 1024,
    overlap: int = 64,
    batch: int = 1,
    stats_size: int | None = None,
    multiple: int = 4,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
    out_dtype: torch.dtype | None = None,
    in_place: bool = False,
    backend: Backend | None = None,
) -> Tensor:
    """Run an image -> image ``network`` (already ``prepare``d on ``device``, default: the
    images') on a float or uint8 batch (N, C, H, W).

    Each image is reflect-padded to a multiple of ``multiple``. One that fits in a tile (or,
    with ``backend``, where ``backend.fits_whole``) runs in one pass with its own
    instance-norm statistics; a larger one gets statistics from a copy shrunk to
    ``stats_size`` (default: the tile size, which bounds memory by the tile; larger is closer
    to a one-pass result) and is then run in tiles. ``dtype`` is the autocast precision
    (``None``: float32). Returns outputs of the input size beside the inputs, as
    ``out_dtype`` (default: uint8 for uint8 images, else float32); with ``in_place`` they
    are written over the images (of that dtype), which saves a copy of them.
    With ``backend`` the network is run there instead, statistics included.
    """
    device = device or images.device
    out_dtype = out_dtype or output_dtype(images)
    if in_place and out_dtype != images.dtype:
        raise ValueError(f"cannot write {out_dtype} outputs over {images.dtype} images")
    amp = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    outputs = []
    with torch.inference_mode(), amp:
        for image in images.split(1):
            height, width = image.shape[-2:]
            padded = _padded(image, multiple)
            if _whole(padded, tile, backend):
                whole = to_float(padded.to(device))
                if backend is None:  # a backend takes its own layout
                    whole = whole.contiguous(memory_format=torch.channels_last)
                with _running(network, backend) as run:
                    result = run(whole).float()
                if out_dtype == torch.uint8:
                    quantize_(result)
                result = result.to(images.device, out_dtype)
            else:
                stats = instance_norm_stats(network, padded, stats_size or tile, multiple,
                                            device, backend)
                with _running(network, backend, stats) as run:
                    result = run_tiled(run, padded, tile, overlap, batch, multiple, device,
                                       out_dtype, padded if in_place else None)
            result = result[..., :height, :width]
            outputs.append(image.copy_(result) if in_place else result)
    if in_place or len(outputs) == 1:
        return images if in_place else outputs[0]
    return torch.cat(outputs)


def _whole(image: Tensor, tile: int, backend: Backend | None) -> bool:
    """Whether ``image`` runs in one pass: it fits in a tile, or in ``backend``'s bound."""
    height, width = image.shape[-2:]
    if backend is not None:
        return backend.fits_whole(height, width, tile)
    return max(height, width) <= tile


def _padded(image: Tensor, multiple: int) -> Tensor:
    """``image`` reflect-padded (replicated if too small) at the bottom and right to sides
    that are multiples of ``multiple``; itself if they already are."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
