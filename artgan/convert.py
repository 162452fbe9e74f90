"""Conversion between the images a Python user holds and the tensors models take.

Models see float32 ``(N, 3, H, W)`` batches in [0, 1]; users hold PIL images, numpy
arrays or tensors of many shapes and dtypes. ``to_batch`` hides the difference and hands
back a function that returns results in the kind the user passed in, alpha included.

Pixels themselves go between uint8 (0..255) and float (read as [0, 1]) here and nowhere else:
``to_float`` one way, ``from_float`` (or ``quantize_``, in place, for large bands) the other,
rounding as ``tensor_to_pil`` does, so every path of the library writes the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from artgan.errors import ArtganError
from artgan.imageio import attach_alpha, split_alpha

Restore = Callable[[torch.Tensor], Any]


def to_float(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels as float32 in [0, 1]: uint8 ones divided by 255 (a new tensor), float ones as
    float32 (themselves when they already are)."""
    return pixels.float().div_(255) if pixels.dtype == torch.uint8 else pixels.float()


def quantize_(values: torch.Tensor, scale: int = 255) -> torch.Tensor:
    """Float in [0, 1] to whole numbers in [0, scale], NaN as 0 (still a float tensor), in
    place: ``values`` is used up, which saves a copy of a large picture's band."""
    return values.nan_to_num_(nan=0.0).clamp_(0, 1).mul_(scale).round_()


def from_float(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float pixels in [0, 1] stored as ``dtype``: uint8 rounded to 0..255 (NaN as 0), a
    float dtype clamped to [0, 1]."""
    if dtype == torch.uint8:
        return _quantize(values, 255).to(torch.uint8)
    return values.clamp(0, 1).to(dtype)


def output_dtype(image: torch.Tensor) -> torch.dtype:
    """Outputs come back in the input's kind: uint8 for uint8 pictures, else float32."""
    return torch.uint8 if image.dtype == torch.uint8 else torch.float32


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A ``(3, H, W)`` float32 tensor in [0, 1] from a PIL image of any mode (alpha dropped)."""
    return to_float(pil_to_uint8(img))


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """An RGB PIL image from a ``(3, H, W)`` tensor in [0, 1], rounded and clamped."""
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(t.shape)}")
    return uint8_to_pil(_quantize(t.detach().float().cpu(), 255).to(torch.uint8))


def pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """A ``(3, H, W)`` uint8 tensor from a PIL image of any mode (alpha dropped), without a
    float copy: large scans stay a quarter of the size."""
    rgb, _alpha = split_alpha(image)
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)


def uint8_to_pil(pixels: torch.Tensor) -> Image.Image:
    """An RGB PIL image from a ``(3, H, W)`` uint8 tensor."""
    return Image.fromarray(pixels.permute(1, 2, 0).contiguous().numpy(), "RGB")


def image_grid(images: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """A ``(N, C, H, W)`` batch as one ``(C, H', W')`` picture: a near-square grid, row by
    row, with ``padding`` px of zeros around every cell (one image is returned as it is;
    grey batches become RGB). torchvision's ``make_grid`` does the same but costs two
    seconds of import on every command that loads the plugins."""
    if images.shape[1] == 1:  # grey: as RGB, so the grid saves like any picture
        images = images.expand(-1, 3, -1, -1)
    count, channels, height, width = images.shape
    if count == 1:
        return images[0]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = images.new_zeros(channels, rows * (height + padding) + padding,
                            columns * (width + padding) + padding)
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[:, top : top + height, left : left + width] = image
    return grid


def to_batch(image: Any) -> tuple[torch.Tensor, Restore]:
    """A float32 ``(N, 3, H, W)`` batch in [0, 1] from ``image``, and the way back.

    Accepts a PIL image, a numpy array ``HxW`` or ``HxWxC`` (C = 1, 3 or 4; uint8,
    uint16 or float in [0, 1]) or a tensor ``(C, H, W)`` / ``(N, C, H, W)`` (float in
    [0, 1] or uint8). A fourth channel is alpha: it is kept aside and re-attached to the
    result, resized if the model changed the picture's size.
    """
    if isinstance(image, Image.Image):
        return _from_pil(image)
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, torch.Tensor):
        return _from_tensor(image)
    raise ArtganError(
        f"cannot use a {type(image).__name__} as an image; "
        "pass a PIL image, a numpy array or a torch tensor"
    )


def _from_pil(image: Image.Image) -> tuple[torch.Tensor, Restore]:
    rgb, alpha = split_alpha(image)
    batch = pil_to_tensor(rgb).unsqueeze(0)

    def restore(out: torch.Tensor) -> Image.Image:
        result = tensor_to_pil(_single(out))
        return result if alpha is None else attach_alpha(result, alpha)

    return batch, restore


def _from_numpy(array: np.ndarray) -> tuple[torch.Tensor, Restore]:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ArtganError(
            f"numpy images must be HxW or HxWxC with C = 1, 3 or 4, got shape {array.shape}"
        )
    dtype = array.dtype
    if dtype == np.uint8:
        scale = 255
    elif dtype == np.uint16:
        scale = 65535
    elif np.issubdtype(dtype, np.floating):
        scale = 0
    else:
        raise ArtganError(f"numpy images must be uint8, uint16 or float, got {dtype}")
    values = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32)).permute(2, 0, 1)
    if scale:
        values = values / scale
    else:
        _check_unit_range(values, "numpy float image")
    colour, alpha = _split_channels(values.unsqueeze(0))

    def restore(out: torch.Tensor) -> np.ndarray:
        result = _with_alpha(_single(out).unsqueeze(0).detach().float().cpu(), alpha)[0]
        pixels = _quantize(result, scale) if scale else result.clamp(0, 1)
        return pixels.permute(1, 2, 0).numpy().astype(dtype)

    return colour, restore


def _from_tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, Restore]:
    unbatched = tensor.ndim == 3
    batch = tensor.unsqueeze(0) if unbatched else tensor
    if batch.ndim != 4 or batch.shape[1] not in (1, 3, 4):
        raise ArtganError(
            "tensor images must be (C, H, W) or (N, C, H, W) with C = 1, 3 or 4, "
            f"got shape {tuple(tensor.shape)}"
        )
    dtype, device = tensor.dtype, tensor.device
    if dtype == torch.uint8:
        values = to_float(batch)
    elif dtype.is_floating_point:
        values = batch.float()
        _check_unit_range(values, "float tensor image")
    else:
        raise ArtganError(f"tensor images must be float or uint8, got {dtype}")
    colour, alpha = _split_channels(values)

    def restore(out: torch.Tensor) -> torch.Tensor:
        if out.ndim != 4 or out.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) batch, got shape {tuple(out.shape)}")
        result = _with_alpha(out.float(), alpha)
        result = _quantize(result, 255) if dtype == torch.uint8 else result.clamp(0, 1)
        result = result.to(device=device, dtype=dtype)
        return result[0] if unbatched and result.shape[0] == 1 else result

    return colour, restore


def _split_channels(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(N, 3, H, W)`` colour from 1, 3 or 4 channels, plus the ``(N, 1, H, W)`` alpha."""
    if batch.shape[1] == 1:
        return batch.expand(-1, 3, -1, -1).contiguous(), None
    if batch.shape[1] == 4:
        return batch[:, :3].contiguous(), batch[:, 3:].contiguous()
    return batch, None


def _with_alpha(batch: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    if alpha is None:
        return batch
    alpha = alpha.to(device=batch.device, dtype=batch.dtype)
    if alpha.shape[-2:] != batch.shape[-2:]:
        alpha = F.interpolate(alpha, size=batch.shape[-2:], mode="bicubic", align_corners=False)
    if alpha.shape[0] != batch.shape[0]:
        raise ValueError(f"batch of {batch.shape[0]} results for {alpha.shape[0]} inputs")
    return torch.cat([batch, alpha.clamp(0, 1)], dim=1)


def _single(out: torch.Tensor) -> torch.Tensor:
    """The one ``(3, H, W)`` picture in a model output for a single input picture."""
    if out.ndim != 4 or out.shape[0] != 1 or out.shape[1] != 3:
        raise ValueError(f"expected a (1, 3, H, W) batch, got shape {tuple(out.shape)}")
    return out[0]


def _quantize(values: torch.Tensor, scale: int) -> torch.Tensor:
    """``quantize_`` on a copy: ``values`` is left as it is."""
    return quantize_(torch.nan_to_num(values, nan=0.0), scale)


def _check_unit_range(values: torch.Tensor, what: str) -> None:
    if values.numel() == 0:
        return
    low, high = float(values.min()), float(values.max())
    if not (0.0 <= low and high <= 1.0):
        raise ArtganError(f"{what} values must lie in [0, 1], got {low:.3g} to {high:.3g}")
