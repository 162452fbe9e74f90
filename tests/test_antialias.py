"""Anti-aliased generators and discriminators (``--antialias``): the blur removes period-2
patterns, adds no weights, and keeps what a smooth picture looks like."""

import torch
from artgan_style_transfer import cyclegan

from artgan.nn.blocks import (
    BlurDownConv,
    NearestUpConv,
    PatchDiscriminator,
    ResnetGenerator,
    blur,
)


def test_blur_removes_a_period_two_mesh_and_keeps_smooth_content():
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    smooth = torch.sin(xs / 6)[None, None].expand(1, 2, -1, -1)
    mesh = 0.2 * (-1.0) ** (ys + xs) + 0.1 * (-1.0) ** xs
    out = blur(smooth + mesh)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert (out - blur(smooth))[inner].abs().max() < 1e-5  # the mesh is gone
    assert (blur(smooth) - smooth)[inner].abs().max() < 0.01


def test_antialiased_networks_take_the_weights_of_plain_ones():
    plain = cyclegan(width=4, n_blocks=1)
    smooth = cyclegan(width=4, n_blocks=1, antialias=True)
    smooth.load_state_dict(plain.state_dict())  # no new weights, same names
    assert PatchDiscriminator(8, 2, antialias=True).state_dict().keys() == \
        PatchDiscriminator(8, 2).state_dict().keys()
    picture = torch.rand(1, 3, 32, 32) * 2 - 1
    assert smooth["a2b"](picture).shape == picture.shape


def test_antialias_reaches_every_downsampling_and_upsampling():
    smooth = ResnetGenerator(width=4, n_blocks=1, n_down=2, antialias=True)
    plain = ResnetGenerator(width=4, n_blocks=1, n_down=2)
    assert sum(isinstance(m, BlurDownConv) for m in smooth.modules()) == 2
    assert sum(isinstance(m, NearestUpConv) and m.antialias for m in smooth.modules()) == 2
    assert not any(isinstance(m, BlurDownConv) or getattr(m, "antialias", False)
                   for m in plain.modules())
    strided = [m for m in PatchDiscriminator(8, 3, antialias=True).modules()
               if isinstance(m, torch.nn.Conv2d) and m.stride[0] > 1]
    assert strided and all(isinstance(m, BlurDownConv) for m in strided)
