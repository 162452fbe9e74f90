"""The style-transfer task: the Python API, folder runs, model errors and a tiny training run.

Models are tiny random CycleGANs saved with ``save_model``; no shipped weights are needed.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from artgan_style_transfer import TASK, cyclegan
from artgan_style_transfer.model import DEFAULT_CONFIG
from PIL import Image
from safetensors import safe_open

import artgan
from artgan import store
from artgan.cli import task_command
from artgan.convert import tensor_to_pil
from artgan.data import holdout_split
from artgan.errors import ArtganError, UnknownNameError
from artgan.nn.blocks import (
    HistoryPool,
    NarrowOutputConv,
    NearestUpConv,
    PatchDiscriminator,
    ResnetGenerator,
)

TINY = {"width": 4, "n_blocks": 1, "n_down": 2, "upsample": "nearest"}


def _save_tiny(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return store.save_model(cyclegan(**TINY), path, task="style-transfer",
                            architecture="cyclegan", config=TINY, card={"summary": "tiny"})


def _pictures(folder: Path, count: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        height, width = 20 + 3 * i, 24 + 2 * (i % 3)
        base = rng.integers(0, 255, 3) * np.ones((height, width, 3))
        pixels = np.clip(base + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:02d}.png")
    return folder


@pytest.fixture
def model(tmp_path) -> Path:
    return _save_tiny(tmp_path / "tiny.safetensors")


def test_stylize_keeps_kind_size_and_alpha(model):
    rgba = Image.new("RGBA", (42, 30), (200, 120, 40, 128))
    out = artgan.stylize(rgba, str(model), device="cpu")
    assert out.mode == "RGBA" and out.size == (42, 30)
    assert np.array(out)[..., 3].mean() == pytest.approx(128, abs=1)
    array = np.random.default_rng(0).integers(0, 255, (30, 42, 3), dtype=np.uint8)
    result = artgan.stylize(array, str(model), device="cpu", reverse=True)
    assert result.shape == array.shape and result.dtype == np.uint8
    tensor = torch.rand(3, 32, 36)
    assert artgan.stylize(tensor, str(model), device="cpu").shape == tensor.shape


def test_pipeline_tiles_and_shrinks(model):
    pipeline = TASK.load(str(model), device="cpu", tile=64, overlap=16, batch=2, max_size=100)
    out = pipeline(Image.new("RGB", (200, 120), (10, 90, 200)))
    assert out.size == (100, 60)
    with pytest.raises(ArtganError, match="--overlap"):
        TASK.load(str(model), device="cpu", tile=64, overlap=40)
    with pytest.raises(ArtganError, match="too small"):
        pipeline(Image.new("RGB", (40, 9)))


@pytest.mark.parametrize("max_size", [None, 100])
def test_pictures_stay_uint8_with_the_result_of_floats(model, max_size):
    pipeline = TASK.load(str(model), device="cpu", tile=64, overlap=16, max_size=max_size)
    pixels = np.random.default_rng(0).integers(0, 256, (150, 210, 3), dtype=np.uint8)
    floats = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    expected = tensor_to_pil(pipeline(floats))
    assert np.array_equal(np.asarray(pipeline(Image.fromarray(pixels))), np.asarray(expected))


def test_folder_with_a_corrupt_image_skips_it_and_exits_1(model, tmp_path, capsys):
    inputs = _pictures(tmp_path / "in", 3)
    (inputs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        task_command(TASK, "run").main(
            [str(inputs), "--style", str(model), "--out", str(out), "--device", "cpu"],
            standalone_mode=False,
        )
    assert exit_info.value.code == 1
    assert sorted(p.name for p in out.iterdir()) == ["img_00.png", "img_01.png", "img_02.png"]
    assert "broken.jpg" in capsys.readouterr().err


def test_compare_writes_before_and_after_side_by_side(model, tmp_path):
    inputs = _pictures(tmp_path / "in", 1)
    out = tmp_path / "pair.png"
    with pytest.raises(SystemExit) as exit_info:
        task_command(TASK, "run").main(
            [str(inputs / "img_00.png"), "--style", str(model), "--out", str(out),
             "--device", "cpu", "--compare"],
            standalone_mode=False,
        )
    assert exit_info.value.code == 0
    before = Image.open(inputs / "img_00.png")
    pair = Image.open(out)
    assert pair.size == (2 * before.width + 8, before.height)
    assert np.array_equal(np.asarray(pair)[:, : before.width], np.asarray(before.convert("RGB")))


def test_weights_of_another_task_are_refused(tmp_path):
    other = store.save_model(cyclegan(**TINY), tmp_path / "gen.safetensors", task="generate",
                             architecture="cyclegan", config=TINY)
    with pytest.raises(ArtganError, match="'generate' model, not a 'style-transfer' model"):
        TASK.load(str(other), device="cpu")


def test_unknown_style_lists_the_available_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path / "home"))
    _save_tiny(store.user_model_dir() / "style-transfer" / "hokusai.safetensors")
    with pytest.raises(UnknownNameError) as error:
        TASK.load("zzz", device="cpu")
    assert "hokusai" in str(error.value) and error.value.exit_code == 2


def test_tiny_training_run_writes_a_loadable_model(tmp_path):
    photos, paintings = _pictures(tmp_path / "a", 6), _pictures(tmp_path / "b", 5, seed=1)
    out = tmp_path / "tiny-style.safetensors"
    task_command(TASK, "train").main([
        "--domain-a", str(photos), "--domain-b", str(paintings), "--name", "tiny",
        "--size", "16", "--width", "4", "--blocks", "1", "--d-width", "4", "--d-layers", "2",
        "--d-padding", "reflect", "--batch-size", "2", "--steps", "3", "--holdout", "2",
        "--identity", "1", "--data-license", "synthetic test pictures", "--out", str(out),
        "--run-dir", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32",
    ], standalone_mode=False)
    info = store.read_header(out)
    assert info["task"] == "style-transfer" and info["architecture"] == "cyclegan"
    card = info["card"]
    assert card["steps"] == 3 and card["images_a"] == 4 and card["images_b"] == 5
    assert card["data_license"] == "synthetic test pictures" and card["hardware"]
    with safe_open(str(out), "pt") as handle:
        assert any(key.startswith("b2a.") for key in handle.keys())
    assert TASK.load(str(out), device="cpu")(Image.new("RGB", (20, 16))).size == (20, 16)


def test_fine_tuning_with_validation_exports_the_best_step(tmp_path):
    photos, paintings = _pictures(tmp_path / "a", 8), _pictures(tmp_path / "b", 5, seed=1)
    start = _save_tiny(tmp_path / "start.safetensors", seed=3)
    out = tmp_path / "tuned.safetensors"
    task_command(TASK, "train").main([
        "--domain-a", str(photos), "--domain-b", str(paintings), "--name", "tuned",
        "--size", "16", "--load-size", "18", "--init", str(start), "--d-width", "4",
        "--d-layers", "2",
        "--d-padding", "reflect", "--steps", "4", "--holdout", "2", "--validate", "3",
        "--validate-every", "2", "--lr", "1e-2", "--out", str(out),
        "--run-dir", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32",
    ], standalone_mode=False)
    card = store.read_header(out)["card"]
    assert card["images_a"] == 3 and card["init"] == str(start)
    assert card["selected_step"] in (0, 2, 4) and card["validation_score"] > 0
    assert "3 photos" in card["validation"]
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert log.count('"validation"') == 3  # the starting point, steps 2 and 4
    assert store.read_header(out)["config"] == TINY


@pytest.mark.parametrize("options", [{"validate_every": 1}, {"validate": 1}])
def test_validation_needs_both_options(tmp_path, options):
    photos, paintings = _pictures(tmp_path / "a", 4), _pictures(tmp_path / "b", 4)
    with pytest.raises(ArtganError, match="go together"):
        TASK.train(domain_a=str(photos), domain_b=str(paintings), name="x", size=16,
                   d_layers=2, d_padding="reflect", steps=1, **options,
                   run_dir=tmp_path / "run", out=str(tmp_path / "x.safetensors"), device="cpu")


@pytest.mark.parametrize("width", [8, DEFAULT_CONFIG["width"]])  # the default is given too
def test_init_with_another_architecture_option_is_a_user_error(tmp_path, width):
    photos, paintings = _pictures(tmp_path / "a", 4), _pictures(tmp_path / "b", 4)
    start = _save_tiny(tmp_path / "start.safetensors")
    with pytest.raises(ArtganError, match=f"--width {width}: --init"):
        TASK.train(domain_a=str(photos), domain_b=str(paintings), name="x", size=16,
                   init=str(start), width=width, steps=1, run_dir=tmp_path / "run",
                   out=str(tmp_path / "x.safetensors"), device="cpu")


def test_too_small_training_size_is_a_user_error(tmp_path):
    photos, paintings = _pictures(tmp_path / "a", 2), _pictures(tmp_path / "b", 2)
    with pytest.raises(ArtganError, match="too small for the discriminator"):
        TASK.train(domain_a=str(photos), domain_b=str(paintings), name="x", size=16,
                   steps=1, run_dir=tmp_path / "run", out=str(tmp_path / "x.safetensors"),
                   device="cpu")


def test_holdout_takes_the_last_names():
    paths = [Path(f"p{i}.jpg") for i in (3, 1, 2, 0)]
    kept, held = holdout_split(paths, 1)
    assert held == [Path("p3.jpg")] and kept == [Path("p0.jpg"), Path("p1.jpg"), Path("p2.jpg")]
    with pytest.raises(ArtganError):
        holdout_split(paths, 4)


def test_nearest_up_conv_equals_upsample_pad_conv():
    torch.manual_seed(0)
    layer = NearestUpConv(5, 3, bias=True)
    x = torch.randn(2, 5, 7, 9)
    upsampled = F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1),
                      mode="reflect")
    expected = F.conv2d(upsampled, layer.weight, layer.bias)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    assert torch.allclose(layer.scattered(x), expected, atol=1e-5)  # the form exporters trace
    last = layer(x.to(memory_format=torch.channels_last))
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(last, expected, atol=1e-5)
    x.requires_grad_(True)
    inputs = (x, layer.weight, layer.bias)
    grads = torch.autograd.grad(layer(x).square().sum(), inputs)
    upsampled = F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1),
                      mode="reflect")
    expected = F.conv2d(upsampled, layer.weight, layer.bias)
    for grad, want in zip(grads, torch.autograd.grad(expected.square().sum(), inputs),
                          strict=True):
        assert torch.allclose(grad, want, rtol=1e-4, atol=1e-4)
    assert layer(torch.randn(1, 5, 1, 3)).shape == (1, 3, 2, 6)


@pytest.mark.parametrize("options", [{}, {"padding": 3}, {"padding": (1, 2)},
                                     {"padding": 3, "padding_mode": "reflect"}])
def test_narrow_output_conv_exports_split_by_rows_to_the_same_result(options):
    torch.manual_seed(0)
    kernel = (3, 5) if options.get("padding") == (1, 2) else 7
    layer = NarrowOutputConv(6, 3, kernel, **options)
    x = torch.randn(2, 6, 19, 16)
    plain = F.conv2d(F.pad(x, layer._reversed_padding_repeated_twice, mode="reflect"),
                     layer.weight, layer.bias) if options.get("padding_mode") == "reflect" \
        else F.conv2d(x, layer.weight, layer.bias, padding=layer.padding)
    assert torch.allclose(layer(x), plain, atol=1e-5)
    assert torch.allclose(layer.by_rows(x), plain, atol=1e-5)
    traced = torch.jit.trace(layer, x)  # tracing is exporting: two convolutions, one grouped
    assert str(traced.graph).count("aten::_convolution") == 2
    assert torch.allclose(traced(x), plain, atol=1e-5)


def test_networks_shapes():
    generator = ResnetGenerator(width=4, n_blocks=1, upsample="transposed")
    assert generator(torch.rand(2, 3, 24, 28) * 2 - 1).shape == (2, 3, 24, 28)
    discriminator = PatchDiscriminator(width=4)
    assert discriminator(torch.rand(1, 3, 256, 256)).shape == (1, 1, 24, 24)


def test_history_pool_keeps_and_mixes_old_fakes():
    torch.manual_seed(0)
    pool = HistoryPool(size=4)
    first = pool(torch.zeros(4, 3, 2, 2))
    assert torch.equal(first, torch.zeros(4, 3, 2, 2)) and len(pool.images) == 4
    mixed = pool(torch.ones(64, 3, 2, 2))
    old = int((mixed.flatten(1).sum(1) == 0).sum())
    assert 0 < old <= 4


def test_validation_by_artefacts_counts_a_mesh_against_a_generator():
    """With "swd+artefacts" a generator that prints a checkerboard loses against one that
    leaves the photos as clean as they were, where plain SWD can barely tell them apart."""
    from artgan_style_transfer.training import StyleValidation

    torch.manual_seed(0)
    photos = F.avg_pool2d(torch.rand(4, 3, 72, 72), 9, stride=1)  # smooth, 64 px
    paintings = torch.rand(6, 3, 64, 64)
    ys, xs = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    mesh = 0.03 * (-1.0) ** (ys + xs)

    class Same(torch.nn.Module):
        def __init__(self, add):
            super().__init__()
            self.add = add
            self.weight = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return (x + self.add).clamp(-1, 1)

    for metric, ratio in (("swd", 1.05), ("swd+artefacts", 1.5)):
        validation = StyleValidation(photos, paintings, metric=metric)
        clean, meshy = validation(Same(0.0)), validation(Same(mesh))
        assert (meshy / clean > ratio) == (metric == "swd+artefacts")
