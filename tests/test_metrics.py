"""Offline metrics: SWD behaves like a distance and sees colour casts; PSNR/SSIM known values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from artgan import metrics
from artgan.errors import ArtganError, UnknownNameError

SMALL = dict(patches_per_image=32, projections=128)


def smooth_images(count: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random low-frequency pictures: structure at every pyramid level, values in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, size // 4, size // 4, generator=generator)
    fine = torch.rand(count, 3, size, size, generator=generator)
    images = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (0.8 * images + 0.2 * fine).clamp(0, 1)


def test_swd_is_zero_on_itself_symmetric_and_deterministic():
    a, b = smooth_images(24, seed=1), smooth_images(20, seed=2)
    same = metrics.swd(a, a, **SMALL)
    assert set(same) == {"swd_16", "swd_32", "swd"}
    assert same["swd"] == pytest.approx(0, abs=1e-6)
    forward, backward = metrics.swd(a, b, **SMALL), metrics.swd(b, a, **SMALL)
    assert forward == pytest.approx(backward)
    assert metrics.swd(a, b, **SMALL) == forward
    assert forward["swd"] > 0


def test_swd_grows_with_noise():
    real = smooth_images(24, seed=1)
    noise = torch.randn(real.shape, generator=torch.Generator().manual_seed(3))
    values = [
        metrics.swd(real, (real + sigma * noise).clamp(0, 1), **SMALL)["swd"]
        for sigma in (0.0, 0.03, 0.1, 0.3)
    ]
    assert values == sorted(values) and values[0] < values[1] < values[2] < values[3]


def test_swd_grows_with_colour_shift():
    real = smooth_images(24, seed=1)
    shift = torch.tensor([0.1, 0.0, -0.1])[None, :, None, None]
    values = [metrics.swd(real, (real + k * shift).clamp(0, 1), **SMALL)["swd"] for k in (0, 1, 2)]
    assert values[0] < values[1] < values[2]


def test_pooled_normalisation_sees_a_colour_cast_that_per_set_hides():
    real = smooth_images(24, seed=1)
    cast = real + torch.tensor([0.15, 0.0, 0.0])[None, :, None, None]  # unclamped: exact shift
    pooled = metrics.swd(real, cast, **SMALL)["swd"]

    generator = torch.Generator().manual_seed(0)
    per_set = []
    for _size, a, b in metrics._descriptor_sets(real, cast, None, 7, 32, generator):
        directions = metrics._random_directions(a[0].numel(), 128, generator)
        a = (a - a.mean((0, 2, 3), keepdim=True)) / a.std((0, 2, 3), keepdim=True)
        b = (b - b.mean((0, 2, 3), keepdim=True)) / b.std((0, 2, 3), keepdim=True)
        per_set.append(metrics._sliced_distance(a, b, directions) * 1e3)
    per_set_value = sum(per_set) / len(per_set)
    assert per_set_value < 1.0
    assert pooled > 50 * max(per_set_value, 1e-3)


def test_swd_levels_and_too_small_images():
    images = smooth_images(4, size=64)
    assert list(metrics.swd(images, images, **SMALL)) == ["swd_16", "swd_32", "swd_64", "swd"]
    assert list(metrics.swd(images, images, levels=2, **SMALL)) == ["swd_32", "swd_64", "swd"]
    with pytest.raises(ArtganError, match="too small"):
        metrics.swd(images[:, :, :6, :6], images[:, :, :6, :6])


def test_psnr_and_ssim_known_values():
    a = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 0.8
    assert metrics.psnr(a, a) == math.inf
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-4)
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-3)
    assert metrics.ssim(a, (a + 0.3 * torch.rand_like(a)).clamp(0, 1)) < 0.9


def test_masked_metrics_count_only_masked_pixels():
    a = torch.full((1, 3, 32, 32), 0.5)
    b = a.clone()
    b[:, :, :, 16:] += 0.2  # right half wrong
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    mask[:, :, :, :4] = True  # far enough from the wrong half for the 11 px SSIM window
    assert metrics.psnr(a, b, mask) == math.inf
    assert metrics.ssim(a, b, mask) == pytest.approx(1.0, abs=1e-4)
    assert metrics.psnr(a, b, ~mask) < metrics.psnr(a, b)
    with pytest.raises(ArtganError, match="no pixels"):
        metrics.psnr(a, b, torch.zeros(1, 1, 32, 32))


def save_set(folder, images, suffix=".png"):
    folder.mkdir()
    for index, image in enumerate(images):
        pixels = (image.permute(1, 2, 0) * 255).round().byte().numpy()
        Image.fromarray(pixels).save(folder / f"{index:02d}{suffix}")


def test_evaluate_swd_psnr_and_load_image_set(tmp_path, capsys):
    real = smooth_images(6, size=40)
    save_set(tmp_path / "real", real, ".jpg")
    save_set(tmp_path / "fake", (real + 0.1).clamp(0, 1))
    (tmp_path / "real" / "00broken.jpg").write_bytes(b"not a jpeg")
    loaded = metrics.load_image_set(tmp_path / "real", size=32, limit=4)
    assert "warning: skipping" in (err := capsys.readouterr().err) and "broken.jpg" in err
    assert loaded.shape == (4, 3, 32, 32) and 0 <= loaded.min() and loaded.max() <= 1

    scores = metrics.evaluate(
        tmp_path / "real", tmp_path / "fake", ("swd", "psnr", "ssim"), size=32
    )
    assert "warning: skipping" in (err := capsys.readouterr().err) and "broken.jpg" in err
    assert {"swd", "swd_16", "swd_32", "psnr", "ssim"} <= set(scores)
    assert scores["swd"] > 0 and 15 < scores["psnr"] < 30 and 0 < scores["ssim"] < 1


def test_load_squares_crops_the_centre_and_skips_broken_files(tmp_path, capsys):
    wide = torch.zeros(3, 20, 40)
    wide[:, :, 10:30] = 1.0  # the centre square is white, the sides black
    save_set(tmp_path / "set", [wide])
    (tmp_path / "set" / "broken.png").write_bytes(b"not a png")
    paths = [tmp_path / "set" / "00.png", tmp_path / "set" / "broken.png"]
    squares = metrics.load_squares(paths, 10)
    assert "warning: skipping" in (err := capsys.readouterr().err) and "broken.png" in err
    assert squares.shape == (1, 3, 10, 10) and squares.min() > 0.9
    with pytest.raises(ArtganError, match="none of the given"):
        metrics.load_squares(paths[1:], 10)
    assert capsys.readouterr().err.startswith("warning: skipping ")


def test_evaluate_errors(tmp_path):
    save_set(tmp_path / "real", smooth_images(3))
    (tmp_path / "fake").mkdir()
    save_set(tmp_path / "fake" / "other", smooth_images(3))
    with pytest.raises(UnknownNameError, match="did you mean 'fid'"):
        metrics.evaluate(tmp_path / "real", tmp_path / "fake", ["fidd"])
    with pytest.raises(ArtganError, match="never downloads"):
        metrics.evaluate(tmp_path / "real", tmp_path / "fake", ["fid"])
    with pytest.raises(ArtganError, match="pairwise"):
        metrics.evaluate(tmp_path / "real", tmp_path / "fake", ["psnr"])


def test_frechet_and_kernel_distances():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(400, 8, generator=generator, dtype=torch.float64)
    b = torch.randn(400, 8, generator=generator, dtype=torch.float64)
    shifted = b + 3.0
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    assert metrics.frechet_distance(a, b) < 0.5
    assert metrics.frechet_distance(a, shifted) == pytest.approx(8 * 9, rel=0.1)
    assert abs(metrics.kernel_distance(a, b, subsets=5)) < 0.05
    assert metrics.kernel_distance(a, shifted, subsets=5) > 1


@pytest.mark.parametrize("count, dim", [(5, 16), (60, 4)])  # Gram and covariance forms
def test_frechet_distance_matches_the_definition(count, dim):
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    b = torch.randn(count + 1, dim, generator=generator, dtype=torch.float64) * 2 + 0.5
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    root_trace = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
    expected = (a.mean(0) - b.mean(0)).square().sum() + (cov_a + cov_b).trace() - 2 * root_trace
    assert metrics.frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-6)


def test_fid_with_local_inception_weights(tmp_path, monkeypatch):
    from safetensors.torch import save_file
    from torchvision.models import inception_v3

    monkeypatch.setattr(metrics, "_INCEPTION_SIZE", 75)  # the smallest it takes: fast
    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    weights = tmp_path / "inception.safetensors"
    save_file(model.state_dict(), weights)  # with AuxLogits, as torchvision's checkpoint
    save_set(tmp_path / "real", smooth_images(3, seed=1))
    save_set(tmp_path / "fake", smooth_images(3, seed=2))
    scores = metrics.evaluate(
        tmp_path / "real", tmp_path / "fake", ["fid", "kid"], size=32, inception_weights=weights
    )
    assert scores["fid"] > 0 and math.isfinite(scores["kid"])

    wrong = tmp_path / "wrong.safetensors"
    save_file({"fc.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ArtganError, match="not torchvision inception_v3"):
        metrics.evaluate(tmp_path / "real", tmp_path / "fake", ["fid"], inception_weights=wrong)


# --- periodic artefacts -------------------------------------------------------------------


def noise_field(count: int, size: int, generator: torch.Generator, slope: float,
                stretch: float = 1.0) -> torch.Tensor:
    """Gaussian noise of unit std with a 1/f^slope amplitude spectrum; ``stretch`` > 1
    squeezes it across x, so it runs in vertical strokes."""
    white = torch.randn(count, 3, size, size, generator=generator)
    frequency = torch.fft.fftfreq(size)
    radius = torch.hypot(frequency[:, None], frequency[None, :] * stretch).clamp(min=1 / size)
    field = torch.fft.ifft2(torch.fft.fft2(white) / radius**slope).real
    return field / field.std((1, 2, 3), keepdim=True)


def natural_images(kind: str, count: int = 8, size: int = 128, seed: int = 0) -> torch.Tensor:
    """8-bit pictures with natural statistics: a smooth random field under fine detail that
    is 1/f noise ("photo"), brush-stroke-like oriented noise ("strokes") or overlapping
    flat rectangles with straight edges ("blocks")."""
    generator = torch.Generator().manual_seed(seed)
    images = 0.5 + 0.12 * noise_field(count, size, generator, 1.5)
    if kind == "photo":
        images += 0.03 * noise_field(count, size, generator, 1.0)
    elif kind == "strokes":
        images += 0.08 * noise_field(count, size, generator, 1.0, stretch=3.0)
    else:
        for image in images:
            for _ in range(30):
                y, x = torch.randint(0, size, (2,), generator=generator).tolist()
                h, w = torch.randint(4, size // 3, (2,), generator=generator).tolist()
                image[:, y : y + h, x : x + w] += 0.1 * torch.randn(3, 1, 1, generator=generator)
    return to_8_bits(images)


def to_8_bits(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round() / 255


def patterns(size: int = 128) -> dict[str, torch.Tensor]:
    """Faint periodic artefacts of GAN upsampling, as (H, W) offsets in [0, 1] units."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return {
        "checkerboard 2": 2 / 255 * (1 - 2 * ((y + x) % 2)),
        "checkerboard 4": 2 / 255 * (1 - 2 * ((y // 2 + x // 2) % 2)),
        "dots 4": 6 / 255 * ((y % 4 == 0) & (x % 4 == 0)).float(),
    }


def test_periodic_artefacts_rise_with_a_faint_checkerboard_or_dot_grid():
    photos = natural_images("photo")
    clean = metrics.periodic_artefacts(photos)
    assert 0 < clean < 0.06  # the chance floor of noise-like detail, about 0.04
    for name, pattern in patterns().items():
        score = metrics.periodic_artefacts(to_8_bits(photos + pattern))
        assert score > 2 * clean, name  # measured: 4.4x, 4.3x and 2.6x
    checkerboard = patterns()["checkerboard 2"]
    scores = [metrics.periodic_artefacts(to_8_bits(photos + k * checkerboard)) for k in (1, 2, 4)]
    assert clean < scores[0] < scores[1] < scores[2]


def test_periodic_artefacts_score_natural_textures_alike():
    """Oriented strokes and straight edges draw ridges, not peaks, through the spectrum."""
    scores = {kind: metrics.periodic_artefacts(natural_images(kind))
              for kind in ("photo", "strokes", "blocks")}
    assert max(scores.values()) < 1.5 * min(scores.values()), scores  # measured: 1.36
    meshed = metrics.periodic_artefacts(
        to_8_bits(natural_images("strokes") + patterns()["checkerboard 2"]))
    assert meshed > 1.4 * scores["strokes"]  # measured: 1.73x


def test_periodic_lattice_scores_the_octave_below_the_mesh():
    """A smooth grid of bumps 12 or 16 px apart (no harmonics) is a lattice, not a mesh;
    10 px apart it is a mesh. The two bands do not overlap."""
    size = 256
    y, x = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    textures = {kind: natural_images(kind, size=size) for kind in ("photo", "strokes", "blocks")}
    clean = {kind: metrics.periodic_lattice(images) for kind, images in textures.items()}
    assert max(clean.values()) < 1.75 * min(clean.values()), clean  # measured: 1.34
    photo = textures["photo"]
    mesh = metrics.periodic_artefacts(photo)
    for pitch in (10, 12, 16):
        bumps = 4 / 255 * torch.cos(2 * math.pi * x / pitch) * torch.cos(2 * math.pi * y / pitch)
        gridded = to_8_bits(photo + bumps)
        lattice = metrics.periodic_lattice(gridded) / clean["photo"]
        meshed = metrics.periodic_artefacts(gridded) / mesh
        if pitch == 10:
            assert lattice < 1.2 and meshed > 3, (lattice, meshed)  # measured: 0.96, 5.3
        else:
            assert lattice > 3 and meshed < 1.3, (pitch, lattice, meshed)  # 5.2-5.4, 0.99
    # a pattern's side lobes reach into the other band, but its peaks' tops do not: stripes
    # count in one band only, 8 px apart in the mesh's, 9 px apart in the lattice's
    for pitch, in_mesh in ((8, True), (9, False)):
        stripes = to_8_bits(photo + 4 / 255 * torch.cos(2 * math.pi * x / pitch))
        lattice = metrics.periodic_lattice(stripes) / clean["photo"]
        meshed = metrics.periodic_artefacts(stripes) / mesh
        seen, unseen = (meshed, lattice) if in_mesh else (lattice, meshed)
        assert seen > 3 and unseen < 1.2, (pitch, lattice, meshed)  # 9.5 / 0.96, 8.7 / 0.99
    with pytest.raises(ArtganError, match="smaller than"):
        metrics.periodic_lattice(torch.rand(1, 3, 96, 256))
    with pytest.raises(ArtganError, match="0 <= shortest < longest"):
        metrics.periodic_artefacts(photo, periods=(16.0, 8.0))


def test_periodic_artefacts_ignore_size_and_dtype_and_flat_tiles():
    photos = natural_images("photo", count=2, size=256, seed=1)
    whole = metrics.periodic_artefacts(photos)
    quarters = torch.cat([photos[:, :, :128, :128], photos[:, :, 128:, 128:]])
    assert metrics.periodic_artefacts(quarters) == pytest.approx(whole, rel=0.15)
    as_bytes = (photos * 255).round().byte()
    assert metrics.periodic_artefacts(as_bytes) == pytest.approx(whole, rel=1e-5)
    half_flat = photos.clone()
    half_flat[:, :, :, :128] = 0.5  # 3 of 7 tile columns flat: left out, not counted as 0
    ratio = metrics.periodic_artefacts(half_flat) / metrics.periodic_artefacts(photos[..., 128:])
    assert 0.75 < ratio < 1.25  # measured: 0.85; 4/7 if flat tiles counted
    assert metrics.periodic_artefacts(torch.full((1, 3, 64, 64), 0.5)) == 0.0


def test_periodic_artefacts_errors():
    with pytest.raises(ArtganError, match="smaller than"):
        metrics.periodic_artefacts(torch.rand(1, 3, 48, 96))
    with pytest.raises(ArtganError, match=r"\(N, 3, H, W\)"):
        metrics.periodic_artefacts(torch.rand(3, 64, 64))


def test_the_spectral_median_is_exact_and_its_gradient_goes_to_the_middle_two():
    from artgan.metrics import _median

    values = [torch.randn(5, 7, requires_grad=True) for _ in range(8)]
    median = _median(values)
    stacked = torch.stack([value.detach() for value in values], -1)
    assert torch.equal(median.detach(), stacked.sort(-1).values[..., 3:5].sum(-1) / 2)
    with torch.no_grad():
        assert torch.equal(_median(values), median.detach())  # the same without autograd
    median.sum().backward()
    grads = torch.stack([value.grad for value in values], -1)
    ranks = stacked.argsort(-1).argsort(-1)  # each value's place in its group
    assert torch.equal(grads, ((ranks == 3) | (ranks == 4)).float() / 2)
    # equal values (flat tiles' zero power) share the gradient: it still sums to 1
    tied = [torch.zeros(3, requires_grad=True) for _ in range(8)]
    _median(tied).sum().backward()
    assert torch.allclose(torch.stack([value.grad for value in tied]).sum(0), torch.ones(3))
