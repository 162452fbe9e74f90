"""Model store: safetensors round trip with metadata, resolution order, corrupt-file errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiny_models
import torch
from safetensors.torch import load_file, save_file
from tiny_models import make

from artgan import store
from artgan.errors import ArtganError, UnknownNameError

CARD = {"data": "synthetic", "license": "n/a", "steps": 3, "summary": "test model"}


@pytest.fixture(autouse=True)
def tiny_architecture(artgan_env):
    """The test-tiny architecture, installed as a plugin for each test."""
    artgan_env.install(tiny_models)


def save(path, task="style-transfer", width=4, **kw):
    return store.save_model(make(0, width), path, task=task, architecture="test-tiny",
                            config={"width": width}, card=CARD, **kw)


def test_metadata_round_trip(tmp_path):
    path = save(tmp_path / "m.safetensors")
    meta = store.read_header(path)
    assert meta["task"] == "style-transfer" and meta["architecture"] == "test-tiny"
    assert meta["config"] == {"width": 4} and meta["card"] == CARD
    assert meta["artgan_version"]
    assert not list(tmp_path.glob(".*tmp")), "atomic save leaves no temporary file"


def test_identical_outputs_in_a_new_process(tmp_path):
    path = save(tmp_path / "m.safetensors")
    x = torch.rand(1, 3, 8, 8)
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    script = (
        "import tiny_models, torch\n"
        "from artgan.nn import ARCHITECTURES\n"
        "ARCHITECTURES.register('test-tiny', tiny_models.tiny_net)\n"
        "from safetensors.torch import load_file, save_file\n"
        "from artgan import store\n"
        f"m = store.load_model({str(path)!r}, 'style-transfer')\n"
        f"x = load_file({str(tmp_path / 'x.safetensors')!r})['x']\n"
        f"save_file({{'y': m.network(x).detach()}}, {str(tmp_path / 'y.safetensors')!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent))
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    from safetensors.torch import load_file

    expected = make(0)(x).detach()
    assert torch.equal(load_file(str(tmp_path / "y.safetensors"))["y"], expected)


def test_half_storage_loads_back_as_float(tmp_path):
    path = save(tmp_path / "h.safetensors", half=True)
    loaded = store.load_model(path, "style-transfer")
    assert all(p.dtype == torch.float32 for p in loaded.network.parameters())
    assert path.stat().st_size < save(tmp_path / "f.safetensors").stat().st_size


def test_user_models_resolve_by_name_before_shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path))
    save(tmp_path / "models" / "style-transfer" / "mine.safetensors")
    info = store.find_model("mine", "style-transfer")
    assert info.source == "user" and info.card["steps"] == 3
    with pytest.raises(UnknownNameError, match="did you mean 'mine'"):
        store.find_model("mien", "style-transfer")


def corrupt_cases(tmp_path):
    good = save(tmp_path / "good.safetensors")
    text = tmp_path / "text.safetensors"
    text.write_text("hello, I am not a model")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    wrong_task = save(tmp_path / "restore.safetensors", task="restore")
    unknown_arch = tmp_path / "arch.safetensors"
    meta = store.read_header(good)
    raw = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in meta.items()}
    unknown_meta = {**raw, "architecture": "nope"}
    save_file(dict(make().state_dict()), str(unknown_arch), metadata=unknown_meta)
    shapes = tmp_path / "shapes.safetensors"
    save_file(dict(make(0, 8).state_dict()), str(shapes), metadata=raw)
    return {
        text: "not a safetensors file",
        truncated: "truncated model file",
        plain: "not an artgan model",
        wrong_task: "this is a 'restore' model, not a 'style-transfer' model",
        unknown_arch: "unknown architecture 'nope'",
        shapes: "has shape",
    }


def test_each_corrupt_file_gives_one_clear_error(tmp_path):
    for path, message in corrupt_cases(tmp_path).items():
        with pytest.raises(ArtganError, match=message) as info:
            store.load_model(path, "style-transfer")
        assert "\n" not in str(info.value)


def test_corrupt_style_files_are_one_line_errors_on_the_command_line(tmp_path, monkeypatch,
                                                                      capsys):
    from PIL import Image

    from artgan import cli

    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), "gray").save(photo)
    for path, message in corrupt_cases(tmp_path).items():
        argv = ["artgan", "run", "style-transfer", "--style", str(path), str(photo),
                "--out", str(tmp_path / "out")]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exit_info:
            cli.main()
        err = capsys.readouterr().err
        assert exit_info.value.code in (1, 2), err  # 2: an unknown name
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_update_card_keeps_the_tensors_and_merges_the_card(tmp_path):
    path = save(tmp_path / "m.safetensors", half=True)
    before = load_file(str(path))
    store.update_card(path, {"quality": {"swd": 1.5}, "steps": 4})
    meta = store.read_header(path)
    assert meta["card"] == {**CARD, "quality": {"swd": 1.5}, "steps": 4}
    assert meta["task"] == "style-transfer" and meta["config"] == {"width": 4}
    after = load_file(str(path))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype
               for k in before)
