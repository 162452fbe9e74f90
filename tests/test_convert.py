"""Images in the kinds users hold go to model batches and come back in the same kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from artgan.convert import image_grid, pil_to_tensor, tensor_to_pil, to_batch
from artgan.errors import ArtganError


def pixels(channels: int = 3, dtype=np.uint8, high: int = 256, seed: int = 0) -> np.ndarray:
    shape = (16, 16, channels) if channels else (16, 16)
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def check_batch(batch: torch.Tensor, n: int = 1) -> None:
    assert batch.dtype == torch.float32
    assert tuple(batch.shape) == (n, 3, 16, 16)
    assert 0.0 <= float(batch.min()) and float(batch.max()) <= 1.0


def upscale(batch: torch.Tensor) -> torch.Tensor:
    return F.interpolate(batch, scale_factor=2, mode="nearest")


# --- PIL --------------------------------------------------------------------------------


def test_pil_rgb_round_trip():
    image = Image.fromarray(pixels())
    batch, back = to_batch(image)
    check_batch(batch)
    result = back(batch)
    assert isinstance(result, Image.Image) and result.mode == "RGB"
    assert np.array_equal(np.asarray(result), np.asarray(image))


def test_pil_rgba_keeps_alpha_even_when_resized():
    image = Image.fromarray(pixels(4))
    batch, back = to_batch(image)
    check_batch(batch)
    same = back(batch)
    assert same.mode == "RGBA"
    assert np.array_equal(np.asarray(same), np.asarray(image))
    bigger = back(upscale(batch))
    assert bigger.mode == "RGBA" and bigger.size == (32, 32)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1"])
def test_pil_other_modes(mode):
    batch, back = to_batch(Image.fromarray(pixels()).convert(mode))
    check_batch(batch)
    assert back(batch).mode == "RGB"


def test_pil_16_bit_is_scaled():
    image = Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16))
    batch, _ = to_batch(image)
    assert float(batch.min()) == 1.0


def test_pil_result_must_be_one_picture():
    batch, back = to_batch(Image.fromarray(pixels()))
    with pytest.raises(ValueError):
        back(torch.cat([batch, batch]))


# --- numpy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "scale"),
    [
        (pixels(3), 255),
        (pixels(3, np.uint16, 65536), 65535),
        (pixels(3, np.float32) / np.float32(255), 1),
        (pixels(3, np.float64) / 255, 1),
    ],
    ids=["uint8", "uint16", "float32", "float64"],
)
def test_numpy_round_trip(array, scale):
    batch, back = to_batch(array)
    check_batch(batch)
    assert torch.allclose(batch[0].permute(1, 2, 0), torch.from_numpy(array / scale).float())
    result = back(batch)
    assert result.dtype == array.dtype and result.shape == array.shape
    assert np.allclose(result, array, atol=1e-6)


def test_numpy_alpha_round_trip():
    array = pixels(4)
    batch, back = to_batch(array)
    check_batch(batch)
    assert np.array_equal(back(batch), array)
    assert back(upscale(batch)).shape == (32, 32, 4)


@pytest.mark.parametrize("channels", [0, 1])
def test_numpy_gray_becomes_colour(channels):
    array = pixels(channels)
    batch, back = to_batch(array)
    check_batch(batch)
    assert torch.equal(batch[0, 0], batch[0, 2])
    result = back(batch)
    assert result.shape == (16, 16, 3)
    assert np.array_equal(result[:, :, 1], array.reshape(16, 16))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((16, 16, 2), np.uint8), "C = 1, 3 or 4"),
        (np.zeros((2, 16, 16, 3), np.uint8), "C = 1, 3 or 4"),
        (np.zeros((16, 16, 3), np.int32), "uint8, uint16 or float"),
        (np.full((16, 16, 3), 2.0, np.float32), r"in \[0, 1\]"),
        (np.full((16, 16, 3), np.nan, np.float32), r"in \[0, 1\]"),
    ],
)
def test_numpy_refused(array, message):
    with pytest.raises(ArtganError, match=message):
        to_batch(array)


# --- torch ------------------------------------------------------------------------------


def test_tensor_unbatched_round_trip():
    tensor = torch.rand(3, 16, 16, dtype=torch.float64)
    batch, back = to_batch(tensor)
    check_batch(batch)
    result = back(batch)
    assert result.shape == tensor.shape and result.dtype == torch.float64
    assert torch.allclose(result, tensor, atol=1e-6)


def test_tensor_batched_with_alpha():
    tensor = torch.rand(2, 4, 16, 16)
    batch, back = to_batch(tensor)
    check_batch(batch, n=2)
    result = back(batch)
    assert torch.equal(result, tensor)
    assert tuple(back(upscale(batch)).shape) == (2, 4, 32, 32)


def test_tensor_uint8_and_gray():
    tensor = torch.from_numpy(pixels(1)).permute(2, 0, 1).contiguous()
    batch, back = to_batch(tensor)
    check_batch(batch)
    result = back(batch)
    assert result.dtype == torch.uint8 and tuple(result.shape) == (3, 16, 16)
    assert torch.equal(result[1], tensor[0])


def test_tensor_result_is_clamped():
    _, back = to_batch(torch.rand(3, 16, 16))
    result = back(torch.full((1, 3, 16, 16), 1.5))
    assert float(result.max()) == 1.0


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (torch.zeros(16, 16), "got shape"),
        (torch.zeros(2, 16, 16), "C = 1, 3 or 4"),
        (torch.zeros(3, 16, 16, dtype=torch.int64), "float or uint8"),
        (torch.full((3, 16, 16), -0.5), r"in \[0, 1\]"),
    ],
)
def test_tensor_refused(tensor, message):
    with pytest.raises(ArtganError, match=message):
        to_batch(tensor)


def test_unsupported_kind():
    with pytest.raises(ArtganError, match="cannot use a list as an image"):
        to_batch([[0, 1], [1, 0]])


# --- helpers ----------------------------------------------------------------------------


def test_pil_tensor_helpers_round_and_clamp():
    t = torch.tensor([-1.0, 0.5, 1.5, 0.2]).view(1, 1, 4).expand(3, 1, 4)
    image = tensor_to_pil(t)
    assert image.mode == "RGB" and image.size == (4, 1)
    assert [image.getpixel((x, 0))[0] for x in range(4)] == [0, 128, 255, 51]
    back = pil_to_tensor(image.convert("RGBA"))
    assert tuple(back.shape) == (3, 1, 4) and back.dtype == torch.float32
    assert torch.allclose(back[0, 0], torch.tensor([0.0, 128 / 255, 1.0, 51 / 255]))


def test_image_grid_places_cells_row_by_row_with_gaps():
    images = torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 3, 4, 6)
    grid = image_grid(images, padding=2)
    assert grid.shape == (3, 2 + 2 * (4 + 2), 2 + 3 * (6 + 2))  # 5 cells: 3 columns, 2 rows
    assert float(grid[0, 2, 2]) == 1 and float(grid[0, 2, 10]) == 2
    assert float(grid[0, 8, 2]) == 4 and float(grid[0, 8, 10]) == 5
    assert float(grid[0, 8, 18]) == 0  # the empty sixth cell
    assert float(grid[:, :2].abs().sum()) == 0 and float(grid[:, :, :2].abs().sum()) == 0
    assert torch.equal(image_grid(images[:1]), images[0])


def test_one_set_of_pixel_converters():
    from artgan.convert import from_float, quantize_, to_float

    pixels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    floats = to_float(pixels)
    assert floats.dtype == torch.float32 and torch.equal(floats, pixels.float() / 255)
    assert torch.equal(from_float(floats, torch.uint8), pixels)  # the round trip is exact
    same = torch.rand(2, 3)
    assert to_float(same) is same
    odd = torch.tensor([-0.2, 0.5 / 255, 1.5 / 255, 0.999, 1.3, float("nan")])
    assert from_float(odd, torch.uint8).tolist() == [0, 0, 2, 255, 255, 0]
    assert torch.equal(from_float(odd[:5], torch.float32), odd[:5].clamp(0, 1))
    in_place = odd.clone()
    assert quantize_(in_place) is in_place and in_place.tolist() == [0, 0, 2, 255, 255, 0]
    picture = tensor_to_pil(torch.rand(3, 5, 7))
    assert np.array_equal(np.asarray(picture),
                          from_float(pil_to_tensor(picture), torch.uint8).permute(1, 2, 0).numpy())
