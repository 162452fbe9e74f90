"""The smooth fill the inpainter starts from, and that an untrained inpainter returns it."""

import torch
from artgan_restore.fill import smooth_fill
from artgan_restore.inpainter import Inpainter


def holes(height: int = 40, width: int = 52, corner: bool = True) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    mask[..., 5:7, 3:45] = 1  # a scratch
    mask[..., 18:33, 20:37] = 1  # a loss
    mask[..., 34:, :6] = float(corner)  # a missing corner
    return mask


def test_known_pixels_are_returned_unchanged_and_holes_are_filled():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 40, 52)
    mask = holes().expand(2, -1, -1, -1)
    filled = smooth_fill(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(filled[known], image[known])
    assert filled.min() >= image.min() and filled.max() <= image.max()  # an average


def test_smooth_pictures_are_filled_almost_exactly():
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 40), torch.linspace(0, 1, 52), indexing="ij")
    ramp = torch.stack([ys, xs, (ys + xs) / 2]).unsqueeze(0)
    # inside the picture a gradient is interpolated; a corner is extrapolated (flatter)
    assert (smooth_fill(ramp, holes(corner=False)) - ramp).abs().max() < 0.05
    flat = torch.full((1, 3, 40, 52), 0.3)
    assert torch.allclose(smooth_fill(flat, holes()), flat)


def test_each_picture_of_a_batch_is_filled_as_it_would_be_alone():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 40, 52)
    mask = torch.zeros(2, 1, 40, 52)
    mask[0, :, 10:13, 5:45] = 1  # a thin band: a shallow pyramid
    mask[1, :, 4:36, 8:44] = 1  # a wide hole: a deep one
    together = smooth_fill(image, mask)
    for index in range(2):
        alone = smooth_fill(image[index : index + 1], mask[index : index + 1])
        assert torch.allclose(together[index : index + 1], alone, atol=1e-6)


def test_a_picture_with_nothing_known_is_filled_with_grey():
    assert torch.allclose(smooth_fill(torch.rand(1, 3, 9, 7), torch.ones(1, 1, 9, 7)),
                          torch.full((1, 3, 9, 7), 0.5))


def test_an_untrained_inpainter_returns_the_smooth_fill():
    torch.manual_seed(0)
    inpainter = Inpainter(width=4, downs=2, blocks=1, global_ratio=0.5).eval()
    image, mask = torch.rand(1, 3, 40, 52), holes()
    expected = smooth_fill(image, mask).clamp(1e-3, 1 - 1e-3)
    assert torch.allclose(inpainter(image, mask), expected, atol=1e-5)
