"""Tiled inference: tiles blend into the whole-image result without seams; folding is exact."""

import math

import pytest
import torch
from torch import nn

from artgan import infer
from artgan.errors import ArtganError
from artgan.nn.blocks import ResnetGenerator


def _picture(size: int, seed: int = 0) -> torch.Tensor:
    """A smooth, photo-like (1, 3, size, size) image in [-1, 1]: waves plus blurred noise."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    waves = torch.stack([torch.sin(7 * x + 3 * y), torch.cos(5 * y - 2 * x), x * y - 0.5])
    noise = torch.randn(1, 3, size // 8, size // 8, generator=generator)
    noise = nn.functional.interpolate(noise, size=(size, size), mode="bicubic")
    return (0.6 * waves + 0.3 * noise).clamp(-1, 1)


def _generator(upsample: str = "nearest", seed: int = 0, width: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return infer.prepare(ResnetGenerator(width=width, n_blocks=2, upsample=upsample),
                         torch.device("cpu"))


def test_tiles_match_the_whole_image_without_seams():
    net, image = _generator(width=4), _picture(768)
    with torch.inference_mode():
        stats = infer.instance_norm_stats(net, image, size=256)
        with infer.frozen_instance_norm(net, stats):
            whole = net(image.contiguous(memory_format=torch.channels_last))
            tiled = infer.run_tiled(net, image, tile=256, overlap=64, batch=3)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().mean() / 2 < 2 / 255  # outputs span [-1, 1]
    size = infer.tile_size(768, 256, 64, 4)
    starts = infer.tile_starts(768, size, 64, 4)
    edges = sorted({s for s in starts[1:]} | {s + size - 1 for s in starts[:-1]})
    step = (tiled[..., :, 1:] - tiled[..., :, :-1]).abs().mean(dim=(0, 1, 2))
    assert step[edges].mean() < 1.25 * step.mean()
    across = (tiled[..., 1:, :] - tiled[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    assert across[edges].mean() < 1.25 * across.mean()


def test_identity_network_comes_back_exactly():
    image = torch.rand(1, 3, 300, 420)
    out = infer.run_tiled(nn.Identity(), image, tile=128, overlap=32, multiple=4)
    assert torch.allclose(out, image, atol=1e-6)


@pytest.mark.parametrize("upsample", ["nearest", "transposed"])
def test_folded_norms_equal_frozen_norms(upsample):
    net, image = _generator(upsample), _picture(96, seed=1)
    with torch.inference_mode():
        stats = infer.instance_norm_stats(net, image, size=64)
        with infer.frozen_instance_norm(net, stats, fold=False):
            plain = net(image)
        with infer.frozen_instance_norm(net, stats):
            folded = net(image)
    assert torch.allclose(plain, folded, atol=1e-4)
    assert not any(isinstance(m, infer.InferenceInstanceNorm) for m in net.modules())


def test_untiled_translate_equals_eager_and_keeps_odd_sizes():
    net = _generator()
    image = _picture(96)[..., :90, :70]
    with torch.no_grad():
        eager = net(image[..., :88, :68])
    out = infer.translate(net, image, tile=128)
    assert out.shape == image.shape
    exact = infer.translate(net, image[..., :88, :68], tile=128)
    assert torch.allclose(exact, eager, atol=1e-4)


def test_large_images_are_tiled_with_whole_image_statistics():
    net, image = _generator(), _picture(160)
    tiled = infer.translate(net, image, tile=96, overlap=32, stats_size=160)
    whole = infer.translate(net, image, tile=160)
    assert (tiled - whole).abs().mean() / 2 < 2 / 255


def test_tile_layout_covers_and_aligns():
    for length, tile, overlap in [(4096, 1024, 64), (772, 256, 64), (1000, 512, 0), (64, 128, 8)]:
        size = infer.tile_size(length, tile, overlap, 4)
        starts = infer.tile_starts(length, size, overlap, 4)
        assert size <= tile and starts[0] == 0 and starts[-1] + size == length
        assert all(s % 4 == 0 for s in starts)
        assert len(starts) == max(1, math.ceil((length - overlap) / (tile - overlap)))


def test_bad_tile_is_a_user_error():
    with pytest.raises(ArtganError, match="tile size"):
        infer.run_tiled(nn.Identity(), torch.rand(1, 3, 64, 64), tile=30, overlap=8, multiple=4)
