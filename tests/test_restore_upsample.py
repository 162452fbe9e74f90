"""The inpainter's decoder: resize convolutions, and older transposed-convolution files."""

import pytest
import torch
from artgan_restore.inpainter import UPSAMPLERS, Inpainter, resize_from_transposed
from artgan_restore.model import ARCHITECTURE, build
from artgan_restore.task import RestoreTask
from test_restore import TINY

from artgan import store
from artgan.cli import task_command
from artgan.errors import ArtganError


def phases(x):
    """The four output phases (even/odd row and column) of a 2x upsampled map."""
    return [x[..., dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)]


def test_a_flat_input_comes_out_flat_from_a_resize_convolution_not_a_transposed_one():
    """The checkerboard's cause: a transposed 3x3 stride-2 kernel gives the phases 1, 2, 2
    and 4 taps; a resize convolution gives every output pixel the same footprint."""
    torch.manual_seed(0)
    flat = torch.ones(1, 6, 8, 8)
    with torch.no_grad():
        resized = UPSAMPLERS["resize"](6, 3)(flat)
        transposed = UPSAMPLERS["transposed"](6, 3)(flat)
    inner = (..., slice(2, -2), slice(2, -2))
    assert resized.shape == transposed.shape == (1, 3, 16, 16)
    assert torch.allclose(resized, resized[..., 4:5, 4:5].expand_as(resized), atol=1e-5)
    means = [phase[inner].mean() for phase in phases(transposed)]
    assert max(means) - min(means) > 0.1


def test_converted_weights_keep_a_flat_inputs_mean_response():
    """``resize_from_transposed`` starts the resize decoder where the transposed one was: on
    a flat input, the mean over the transposed layer's four phases."""
    torch.manual_seed(1)
    transposed = Inpainter(width=4, downs=2, blocks=1, global_ratio=0.5, upsample="transposed")
    resized = Inpainter(width=4, downs=2, blocks=1, global_ratio=0.5, upsample="resize")
    resized.load_state_dict(resize_from_transposed(transposed.state_dict()))
    flat = torch.full((1, 16, 8, 8), 0.5)
    with torch.no_grad():
        before = transposed.decoder[0](flat)[..., 2:-2, 2:-2]
        after = resized.decoder[0](flat)[..., 2:-2, 2:-2]
    torch.testing.assert_close(after, before.mean(dim=(-2, -1), keepdim=True).expand_as(after),
                               rtol=1e-4, atol=1e-5)


def test_a_model_file_without_the_option_loads_its_transposed_decoder(tmp_path):
    older = {**TINY, "inpainter": {key: value for key, value in TINY["inpainter"].items()
                                   if key != "upsample"}}
    path = store.save_model(build(**older), tmp_path / "older.safetensors", task="restore",
                            architecture=ARCHITECTURE, config=older)
    loaded = store.load_model(path, "restore").network["inpainter"]
    assert isinstance(loaded.decoder[0], torch.nn.ConvTranspose2d)
    assert not isinstance(build(**TINY)["inpainter"].decoder[0], torch.nn.ConvTranspose2d)


def save_transposed(path):
    config = {**TINY, "inpainter": {**TINY["inpainter"], "upsample": "transposed"}}
    torch.manual_seed(2)
    networks = build(**config)
    with torch.no_grad():  # a trained head: through a zero one no gradient reaches the rest
        networks["inpainter"].head.weight.normal_(std=0.1)
    return store.save_model(networks, path, task="restore", architecture=ARCHITECTURE,
                            config=config, card={"summary": "random weights for tests"})


def train(tmp_path, *options):
    task_command(RestoreTask(), "train").main([
        "--data", str(tmp_path / "data"), "--load-size", "64", "--batch-size", "2",
        "--device", "cpu", "--precision", "fp32", "--steps", "1", *options,
    ], standalone_mode=False)


@pytest.fixture
def pictures(tmp_path):
    from PIL import Image
    (tmp_path / "data").mkdir()
    for i in range(3):
        Image.effect_noise((64, 64), 40 + i).convert("RGB").save(tmp_path / "data" / f"{i}.png")


def test_an_inpainter_fine_tune_turns_a_transposed_decoder_into_resize_convolutions(
        tmp_path, pictures, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = save_transposed(tmp_path / "start.safetensors")
    target = tmp_path / "resized.safetensors"
    train(tmp_path, "--init", str(start), "--only", "inpainter", "--inpainter-upsample",
          "resize", "--lr", "0", "--out", str(target))
    after = store.load_model(target, "restore")
    assert after.config["inpainter"]["upsample"] == "resize"
    before = store.load_model(start, "restore").network["inpainter"].state_dict()
    expected = resize_from_transposed(before)
    tuned = after.network["inpainter"].state_dict()
    for key in ("decoder.0.weight", "decoder.3.weight", "head.weight"):  # lr 0: as started
        torch.testing.assert_close(tuned[key], expected[key].half().float(), rtol=1e-3,
                                   atol=1e-4, msg=key)


@pytest.mark.parametrize("upsample, only, start", [
    ("resize", "detector", "transposed"),  # the inpainter is kept as it is
    ("transposed", "inpainter", "resize"),  # no way back
])
def test_a_decoder_change_the_run_cannot_make_is_one_error(tmp_path, pictures, monkeypatch,
                                                           upsample, only, start):
    monkeypatch.chdir(tmp_path)
    init = (save_transposed(tmp_path / "start.safetensors") if start == "transposed" else
            store.save_model(build(**TINY), tmp_path / "start.safetensors", task="restore",
                             architecture=ARCHITECTURE, config=TINY))
    with pytest.raises(ArtganError, match="--inpainter-upsample"):
        train(tmp_path, "--init", str(init), "--only", only, "--inpainter-upsample", upsample,
              "--out", str(tmp_path / "out.safetensors"))


def test_decoder_only_trains_the_decoder_and_head_and_keeps_the_rest(tmp_path, pictures,
                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = save_transposed(tmp_path / "start.safetensors")
    target = tmp_path / "tuned.safetensors"
    train(tmp_path, "--init", str(start), "--only", "inpainter", "--inpainter-upsample",
          "resize", "--decoder-only", "--lr", "1e-2", "--out", str(target))
    before = resize_from_transposed(
        store.load_model(start, "restore").network["inpainter"].state_dict())
    after = store.load_model(target, "restore")
    assert after.info.card["trained"] == "inpainter's decoder and head only"
    tuned = after.network["inpainter"].state_dict()
    changed = {key for key, value in tuned.items() if value.is_floating_point()
               and not torch.allclose(value, before[key].half().float(), atol=1e-4)}
    assert any(key.startswith("decoder.") for key in changed)
    assert all(key.startswith(("decoder.", "head.")) for key in changed)


def test_decoder_only_needs_the_inpainter_alone(tmp_path, pictures, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtganError, match="--decoder-only"):
        train(tmp_path, "--init", str(save_transposed(tmp_path / "start.safetensors")),
              "--only", "detector", "--decoder-only", "--out", str(tmp_path / "o.safetensors"))
