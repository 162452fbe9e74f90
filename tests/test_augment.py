import pytest
import safetensors.torch
import torch

from artgan.augment import AUGMENTATIONS, Augment, Cutout, Translation
from artgan.errors import ArtganError, UnknownNameError

BUILT_IN = ["color", "translation", "cutout"]


def images(*shape, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator, dtype=dtype) * 2 - 1


@pytest.mark.parametrize("name", BUILT_IN)
@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (2, 1, 8, 12)])
def test_op_keeps_shape_and_dtype(name, shape):
    x = images(*shape)
    out = AUGMENTATIONS.get(name)(x, torch.ones(shape[0], dtype=torch.bool), None)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", BUILT_IN)
def test_op_leaves_unmasked_samples_alone(name):
    x = images(4, 3, 8, 8)
    mask = torch.tensor([True, False, True, False])
    out = AUGMENTATIONS.get(name)(x, mask, torch.Generator().manual_seed(1))
    assert torch.equal(out[~mask], x[~mask])
    assert not torch.equal(out[mask], x[mask])


@pytest.mark.parametrize("name", BUILT_IN)
def test_op_gradcheck_with_replayed_parameters(name):
    op = AUGMENTATIONS.get(name)
    x = images(1, 3, 8, 8, dtype=torch.float64).requires_grad_(True)
    params = op.sample(x, torch.Generator().manual_seed(3))
    assert torch.autograd.gradcheck(lambda t: op.apply(t, params), (x,))


def test_augment_gradcheck_with_seeded_generator():
    augment = Augment()
    x = images(2, 3, 8, 8, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda t: augment(t, generator=torch.Generator().manual_seed(0)), (x,)
    )


def test_translation_shifts_whole_pixels_with_zero_fill():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = Translation().apply(x, {"shift": torch.tensor([[1, -1]])})  # right 1, up 1
    expected = torch.zeros_like(x)
    expected[..., :3, 1:] = x[..., 1:, :3]
    torch.testing.assert_close(out, expected)
    shifts = Translation().sample(images(64, 1, 8, 8))["shift"]
    assert shifts.abs().max() == 1  # 1/8 of 8 pixels


def test_cutout_zeros_a_half_size_square():
    out = Cutout().apply(
        torch.ones(1, 1, 8, 8), {"top": torch.tensor([2]), "left": torch.tensor([3])}
    )
    assert out.sum() == 64 - 16
    assert out[0, 0, 2:6, 3:7].sum() == 0
    clipped = Cutout().apply(
        torch.ones(1, 1, 8, 8), {"top": torch.tensor([-2]), "left": torch.tensor([6])}
    )
    assert clipped.sum() == 64 - 4


def test_p_zero_and_empty_policy_are_identity():
    x = images(3, 3, 8, 8)
    assert torch.equal(Augment(p=0.0)(x), x)
    for text in (None, "", "none", " none "):
        augment = Augment.from_option(text)
        assert augment.policy == [] and torch.equal(augment(x), x)


def test_gradients_reach_the_generator_and_draws_are_seedable():
    x = images(4, 3, 8, 8).requires_grad_(True)
    augment = Augment.from_option("color,translation,cutout")
    out = augment(x, generator=torch.Generator().manual_seed(5))
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = augment(x.detach(), generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(again, out.detach())


def test_unknown_op_and_bad_values_fail():
    with pytest.raises(UnknownNameError, match="cutout"):
        Augment.from_option("color,cutuot")
    with pytest.raises(ArtganError):
        Augment(p=1.5)
    with pytest.raises(ArtganError):
        Augment(ada_target=2.0)


def test_plugins_can_add_ops():
    def flip(x, mask, generator):
        return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)

    AUGMENTATIONS.register("flip-test", flip)
    try:
        x = images(2, 3, 4, 4)
        torch.testing.assert_close(Augment("flip-test")(x), x.flip(3))
    finally:
        AUGMENTATIONS.unregister("flip-test")


def test_ada_p_rises_when_d_is_confident_on_reals():
    augment = Augment(ada_target=0.6, ada_interval=4, ada_kimg=1)
    assert augment.p == 0.0
    for _ in range(3):
        augment.update(torch.ones(8))
    assert augment.p == 0.0  # adjusts only every ada_interval calls
    for _ in range(5):
        augment.update(torch.ones(8, 1, 2, 2))  # PatchGAN-shaped logits work too
    assert augment.p == pytest.approx(2 * 32 / 1000)


def test_ada_p_falls_and_stays_in_range():
    augment = Augment(ada_target=0.6, ada_interval=1, ada_kimg=0.01)
    for _ in range(3):
        augment.update(torch.ones(8))
    assert augment.p == 1.0
    augment.update(-torch.ones(4))
    assert augment.p == pytest.approx(1.0 - 4 / 10)
    for _ in range(5):
        augment.update(-torch.ones(8))
    assert augment.p == 0.0


def test_fixed_p_ignores_updates():
    augment = Augment(p=0.3)
    augment.update(torch.ones(8))
    assert augment.p == pytest.approx(0.3)


def test_state_dict_round_trip_through_safetensors():
    augment = Augment(ada_target=0.6, ada_interval=4, ada_kimg=1)
    for _ in range(6):
        augment.update(torch.ones(8))
    saved = safetensors.torch.load(safetensors.torch.save(augment.state_dict()))
    restored = Augment(ada_target=0.6, ada_interval=4, ada_kimg=1)
    restored.load_state_dict(saved)
    assert restored.p == augment.p > 0
    for module in (augment, restored):
        module.update(torch.ones(8))
        module.update(torch.ones(8))  # completes the interval started before saving
    assert restored.p == augment.p == pytest.approx(2 * 32 / 1000)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_the_tensors_device():
    augment = Augment(ada_target=0.6, ada_interval=1).cuda()
    x = images(4, 3, 16, 16).cuda().half().requires_grad_(True)
    out = augment(x, generator=torch.Generator("cuda").manual_seed(0))
    augment.update(torch.ones(4, device="cuda"))
    out.float().sum().backward()
    assert out.device.type == "cuda" and out.dtype == torch.float16 and x.grad is not None
    assert augment.p > 0
