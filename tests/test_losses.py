import math

import pytest
import torch

from artgan.errors import UnknownNameError
from artgan.losses import (
    LOSSES,
    AdversarialLoss,
    anchor_loss,
    cycle_loss,
    feature_matching_loss,
    gradient_penalty,
    identity_loss,
    periodic_artefact_loss,
    r1_penalty,
    reconstruction_loss,
)

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([0.0, -1.0])


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


# (d_loss(REAL, FAKE), g_loss(FAKE)) worked out by hand.
EXPECTED = {
    "nonsaturating": (
        (softplus(0) + softplus(-2)) / 2 + (softplus(0) + softplus(-1)) / 2,
        (softplus(0) + softplus(1)) / 2,
    ),
    "lsgan": ((1 + 1) / 2 + (0 + 1) / 2, (1 + 4) / 2),
    "hinge": ((1 + 0) / 2 + (1 + 0) / 2, 0.5),
    "wgan": (-0.5 - 1.0, 0.5),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_adversarial_losses_match_hand_values(name):
    loss = LOSSES.get(name)
    d_expected, g_expected = EXPECTED[name]
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g_loss(FAKE).item() == pytest.approx(g_expected, rel=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_losses_are_float32_under_autocast(name):
    real = torch.randn(2, 1, 4, 4, requires_grad=True)
    fake = torch.randn(2, 1, 4, 4, requires_grad=True)
    loss = LOSSES.get(name)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = loss.d_loss(real.bfloat16(), fake.bfloat16())
        g = loss.g_loss(fake.bfloat16())
    assert d.dtype == g.dtype == torch.float32
    (d + g).backward()
    assert real.grad is not None and fake.grad is not None


def test_plugins_can_add_losses_and_unknown_names_fail():
    class Zero(AdversarialLoss):
        def d_loss(self, real_logits, fake_logits):
            return real_logits.sum() * 0

        def g_loss(self, fake_logits):
            return fake_logits.sum() * 0

    LOSSES.register("zero-test", Zero())
    try:
        assert LOSSES.get("zero-test").g_loss(FAKE).item() == 0
    finally:
        LOSSES.unregister("zero-test")
    with pytest.raises(UnknownNameError, match="hinge"):
        LOSSES.get("hinje")


def linear_discriminator(weight):
    return lambda x: (x * weight).flatten(1).sum(dim=1)


def test_gradient_penalty_on_linear_discriminator():
    torch.manual_seed(0)
    weight = torch.randn(3, 4, 4, requires_grad=True)
    generator_param = torch.tensor(1.0, requires_grad=True)
    real = torch.randn(5, 3, 4, 4)
    fake = torch.randn(5, 3, 4, 4) * generator_param
    penalty = gradient_penalty(linear_discriminator(weight), real, fake)
    norm = weight.detach().norm()
    # The gradient of a linear D is its weight everywhere, whatever the interpolation.
    assert penalty.item() == pytest.approx((norm.item() - 1) ** 2, rel=1e-5)
    penalty.backward()
    expected_grad = 2 * (norm - 1) * weight.detach() / norm
    torch.testing.assert_close(weight.grad, expected_grad)
    assert generator_param.grad is None  # the penalty trains only D


def test_r1_penalty_on_linear_discriminator():
    weight = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    real = torch.randn(4, 1, 2, 2, requires_grad=True)
    logits = linear_discriminator(weight)(real)
    assert r1_penalty(logits, real).item() == pytest.approx(1 + 4 + 9 + 1)


def test_r1_penalty_needs_input_gradients():
    real = torch.randn(2, 1, 2, 2)
    with pytest.raises(ValueError, match="requires_grad"):
        r1_penalty(real.sum(dim=(1, 2, 3)), real)


def test_cycle_and_identity_losses_are_l1():
    a = torch.tensor([0.0, 1.0, 2.0])
    b = torch.tensor([1.0, 1.0, 0.0])
    assert cycle_loss(a, b).item() == pytest.approx(1.0)
    assert identity_loss(b, a).item() == pytest.approx(1.0)


def test_reconstruction_loss_with_and_without_mask():
    output = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[1.0, 5.0], [3.0, 5.0]], [[-2.0, 5.0], [2.0, 5.0]]]).unsqueeze(0)
    mask = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(1, 1, 2, 2)
    assert reconstruction_loss(output, target).item() == pytest.approx(28 / 8)
    assert reconstruction_loss(output, target, mask).item() == pytest.approx((1 + 3 + 2 + 2) / 4)
    assert reconstruction_loss(output, target, torch.zeros_like(mask)).item() == 0


def test_feature_matching_detaches_real_features():
    real = [torch.tensor([1.0, 1.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)]
    fake = [torch.tensor([0.0, 3.0], requires_grad=True), torch.tensor([4.0], requires_grad=True)]
    loss = feature_matching_loss(real, fake)
    assert loss.item() == pytest.approx(((1 + 2) / 2 + 4) / 2)
    loss.backward()
    assert all(f.grad is not None for f in fake)
    assert all(r.grad is None for r in real)
    with pytest.raises(ValueError):
        feature_matching_loss(real, fake[:1])


def test_periodic_artefact_loss_is_the_excess_score_and_its_gradient_lowers_a_mesh():
    """Both bands count: the fine mesh (``periodic_artefacts``) and, an octave lower, the
    lattice (``periodic_lattice``), each by its excess over the reference's mean."""
    from test_metrics import natural_images, patterns

    from artgan import metrics

    photos = natural_images("photo", count=2)
    y, x = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    lattice = {"tile": metrics.LATTICE_TILE, "periods": metrics.LATTICE_PERIODS}
    bumps = torch.cos(2 * math.pi * x / 16) * torch.cos(2 * math.pi * y / 16)
    found = {**patterns(), "bumps 16": 6 / 255 * bumps}
    for name in ("checkerboard 2", "bumps 16"):
        pattern = found[name]
        meshed = photos + pattern
        expected = sum(
            float((metrics.periodic_artefact_shares(meshed, **band)
                   - metrics.periodic_artefact_shares(photos, **band).mean()).clamp(min=0).mean())
            for band in ({}, lattice))
        before = float(periodic_artefact_loss(meshed, photos))
        assert before == pytest.approx(expected, rel=1e-4) and before > 0.1, name  # 0.15, 0.25
        if name == "bumps 16":  # the lattice band alone sees it
            assert float(metrics.periodic_artefact_shares(meshed).mean()) < 1.1 * float(
                metrics.periodic_artefact_shares(photos).mean())
        # under the reference: only a photo's chance excess over the pair's mean is left
        assert float(periodic_artefact_loss(photos, meshed)) < 0.2 * before, name
        images = meshed.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([images], lr=3.0)
        for _ in range(20):
            optimizer.zero_grad()
            periodic_artefact_loss(images, photos).backward()
            optimizer.step()
        assert float(periodic_artefact_loss(images.detach(), photos)) < 0.2 * before, name  # 0
        # lowered until it no longer stands out of the photos' spectra, not erased (0.75, 0.91)
        left = ((images.detach() - photos) * pattern).sum() / (pattern.square().sum() * 6)
        assert float(left) < 0.96, name
    # below 128 px only the mesh can be scored
    small = photos[..., :96, :96]
    dotted = small + found["dots 4"][:96, :96]
    assert float(periodic_artefact_loss(dotted, small)) == pytest.approx(
        metrics.periodic_artefacts(dotted) - metrics.periodic_artefacts(small), rel=1e-4)


def test_anchor_loss_blurred_holds_the_coarse_picture_and_frees_a_fine_mesh():
    torch.manual_seed(0)
    start = torch.rand(2, 3, 64, 64)
    rows = torch.arange(64).view(1, 1, -1, 1)
    meshed = start + 0.2 * torch.where(rows % 4 < 2, 1.0, -1.0)  # stripes 4 px apart
    tinted = start + 0.05  # a shift of the palette four times smaller
    assert float(anchor_loss(start, start)) == 0
    assert float(anchor_loss(tinted, start)) == pytest.approx(0.05, rel=1e-3)
    assert float(anchor_loss(meshed, start)) < 0.001  # four times stronger
    images = tinted.clone().requires_grad_(True)
    anchors = start.clone().requires_grad_(True)
    anchor_loss(images, anchors).backward()
    assert images.grad.abs().sum() > 0 and anchors.grad is None  # the start is a target
    # unblurred, every pixel is tied
    assert float(anchor_loss(meshed, start, blur=0)) == pytest.approx(0.2, rel=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a small drift is not rounded away
        drifted = anchor_loss(start + 1e-3, start)
    assert drifted.dtype == torch.float32 and float(drifted) == pytest.approx(1e-3, rel=1e-3)
