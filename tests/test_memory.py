"""Memory is bounded by the tile, not the picture: no float copy of a whole picture is made."""

from pathlib import Path

import numpy as np
import pytest
import torch
from artgan_style_transfer import TASK, cyclegan
from PIL import Image
from torch.overrides import TorchFunctionMode

from artgan import store

TINY = {"width": 4, "n_blocks": 1, "n_down": 2, "upsample": "nearest"}


class LargestFloat(TorchFunctionMode):
    """Notes the most elements of any floating-point tensor that a torch call returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                self.largest = max(self.largest, value.numel())
        return result


@pytest.fixture
def model(tmp_path) -> Path:
    torch.manual_seed(0)
    return store.save_model(cyclegan(**TINY), tmp_path / "tiny.safetensors",
                            task="style-transfer", architecture="cyclegan", config=TINY,
                            card={"summary": "tiny"})


def test_tiled_style_transfer_makes_no_float_copy_of_the_picture(model):
    pixels = np.random.default_rng(0).integers(0, 256, (800, 400, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    pipeline = TASK.load(str(model), device="cpu", tile=128, overlap=16)
    with LargestFloat() as watch:
        out = pipeline(picture)
    assert out.size == picture.size
    assert 0 < watch.largest < pixels.size / 2  # a band of rows, or one tile's activations
