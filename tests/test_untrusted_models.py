"""A .safetensors file from the internet must not be able to hurt.

Its header cannot make artgan build a huge network, a malformed header or tensor is one
error line naming the file (one warning line, and skipped, when found in the user folder),
and the text of its model card cannot drive the terminal that lists it.
"""

import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_models
import torch
from PIL import Image
from safetensors.torch import save_file
from tiny_models import make, tiny_net

from artgan import store
from artgan.cli import main
from artgan.errors import ArtganError
from artgan.nn import ARCHITECTURES

OSC = "\x1b]0;pwned\x07"  # retitles the terminal; click strips CSI sequences, not OSC
CARD = {"data": "synthetic", "steps": 3}


@pytest.fixture(autouse=True)
def tiny_architecture(artgan_env):
    """The test-tiny architecture, installed as a plugin for each test."""
    artgan_env.install(tiny_models)


def save(path: Path, network: torch.nn.Module | None = None, task: str = "style-transfer",
         card: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return store.save_model(network or make(), path, task=task, architecture="test-tiny",
                            config={"width": 4}, card=card or CARD)


def parts(path: Path) -> tuple[dict, bytes]:
    """A safetensors file's header (parsed) and its tensor bytes."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def write(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    """A safetensors file by hand: 8-byte little-endian header length, header, tensor bytes."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def tampered(path: Path, change: Callable[[dict], None]) -> Path:
    """A good test-tiny model at ``path`` whose header ``change`` then edits in place."""
    header, data = parts(save(path))
    change(header)
    return write(path, header, data)


def metadata_set(key: str, value: object) -> Callable[[dict], None]:
    return lambda header: header["__metadata__"].__setitem__(key, value)


def metadata_del(key: str) -> Callable[[dict], None]:
    return lambda header: header["__metadata__"].pop(key)


DEEP = "[" * 100_000 + "]" * 100_000
MALFORMED_HEADERS = {
    "no-data-offsets": lambda header: header["0.weight"].pop("data_offsets"),
    "offsets-not-a-list": lambda header: header["0.weight"].__setitem__("data_offsets", "0-9"),
    "metadata-list": lambda header: header.__setitem__("__metadata__", ["format", store.FORMAT]),
    "no-task": metadata_del("task"),
    "no-architecture": metadata_del("architecture"),
    "card-a-string": metadata_set("card", json.dumps("a card")),
    "config-not-a-string": metadata_set("config", {"width": 4}),
    "config-deep": metadata_set("config", DEEP),
    "card-deep": metadata_set("card", DEEP),
    "config-nested": metadata_set("config", json.dumps({"a": {"b": {"c": {"d": {"e": 1}}}}})),
}


def malformed_files(folder: Path) -> list[Path]:
    files = [tampered(folder / f"{name}.safetensors", change)
             for name, change in MALFORMED_HEADERS.items()]
    deep_header = b'{"x": ' + DEEP.encode() + b"}"
    return [*files, write(folder / "deep-header.safetensors", deep_header)]


def assert_one_line_about(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``artgan ARGS`` in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["artgan", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def photo(tmp_path: Path) -> str:
    path = tmp_path / "photo.png"
    Image.new("RGB", (32, 32), "gray").save(path)
    return str(path)


@pytest.mark.parametrize("name", [*MALFORMED_HEADERS, "deep-header"])
def test_a_malformed_header_is_one_error_line_naming_the_file(tmp_path, name):
    path = next(p for p in malformed_files(tmp_path) if p.stem == name)
    for read in (store.read_header, lambda p: store.load_model(p, "style-transfer")):
        with pytest.raises(ArtganError) as error:
            read(path)
        assert_one_line_about(error, path)


def test_malformed_files_on_the_command_line_are_one_error_line(tmp_path, monkeypatch, capsys):
    picture = photo(tmp_path)
    for path in malformed_files(tmp_path / "models"):
        code, _, err = run_main(monkeypatch, capsys, "run", "style-transfer", "--style",
                                str(path), picture, "--out", str(tmp_path / "out"))
        assert code == 1 and err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def tensors_of(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in network.state_dict().items()}


def rewrite_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    """``path``'s header metadata over other tensors."""
    header, _ = parts(path)
    save_file(tensors, str(path), metadata=header["__metadata__"])
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_weights_that_are_not_finite_are_refused(tmp_path, value):
    network = make()
    with torch.no_grad():
        network[2].weight[0, 0, 0, 0] = value
    path = save(tmp_path / "m.safetensors", network)
    with pytest.raises(ArtganError, match="'2.weight' holds NaN or infinite values") as error:
        store.load_model(path, "style-transfer")
    assert_one_line_about(error, path)


def test_integer_weights_of_the_right_shape_are_refused(tmp_path):
    path = save(tmp_path / "m.safetensors")
    integers = {key: value.to(torch.int32) for key, value in tensors_of(make()).items()}
    rewrite_tensors(path, integers)
    with pytest.raises(ArtganError, match="is torch.int32, 'test-tiny' expects torch.float32"
                       ) as error:
        store.load_model(path, "style-transfer")
    assert_one_line_about(error, path)


def test_a_stray_tensor_name_is_one_error_line(tmp_path):
    path = save(tmp_path / "m.safetensors")
    rewrite_tensors(path, {**tensors_of(make()), "evil\nname": torch.zeros(1)})
    with pytest.raises(ArtganError, match="0 missing, 1 unexpected") as error:
        store.load_model(path, "style-transfer")
    assert_one_line_about(error, path)


def test_weights_relabelled_as_another_architecture_are_one_error_line(tmp_path):
    restore_config = {"detector": {"depth": 2, "width": 8}, "size": 32,
                      "inpainter": {"blocks": 1, "downs": 1, "global_ratio": 0.5, "width": 8}}
    path = tampered(tmp_path / "m.safetensors", lambda header: header["__metadata__"].update(
        task="restore", architecture="restore", config=json.dumps(restore_config)))
    with pytest.raises(ArtganError, match="weights do not match 'restore'") as error:
        store.load_model(path, "restore")
    assert_one_line_about(error, path)


def test_style_weights_relabelled_as_restore_are_one_error_line(tmp_path, monkeypatch, capsys):
    header, data = parts(store.shipped_model_dir() / "style-transfer" / "monet.safetensors")
    header["__metadata__"]["task"] = "restore"
    path = write(tmp_path / "relabelled.safetensors", header, data)
    code, _, err = run_main(monkeypatch, capsys, "run", "restore", "--model", str(path),
                            photo(tmp_path), "--out", str(tmp_path / "out"))
    assert code == 1 and err.startswith(f"error: {path}: ") and err.count("\n") == 1, err


@pytest.fixture
def recorded() -> list[str]:
    """Registers the architecture ``test-recorded``; lists the device of each build."""
    builds: list[str] = []

    def factory(width: int = 4) -> torch.nn.Module:
        builds.append(torch.empty(0).device.type)
        return tiny_net(width)

    ARCHITECTURES.register("test-recorded", factory, replace=True)
    yield builds
    ARCHITECTURES.unregister("test-recorded")


def recorded_model(path: Path, config: dict) -> Path:
    return tampered(path, lambda header: header["__metadata__"].update(
        architecture="test-recorded", config=json.dumps(config)))


def test_a_sane_model_is_checked_on_the_meta_device_then_built_once(tmp_path, recorded):
    path = recorded_model(tmp_path / "m.safetensors", {"width": 4})
    loaded = store.load_model(path, "style-transfer")
    assert recorded == ["meta", "cpu"]
    assert torch.equal(loaded.network[0].weight, make()[0].weight)


def test_a_config_out_of_bounds_builds_nothing(tmp_path, recorded):
    path = recorded_model(tmp_path / "m.safetensors", {"width": 100_000})
    with pytest.raises(ArtganError, match=r"config.width=100000 is out of bounds") as error:
        store.load_model(path, "style-transfer")
    assert_one_line_about(error, path)
    assert recorded == []


def test_a_nested_config_out_of_bounds_names_the_key(tmp_path):
    config = {"detector": {"width": 100_000}, "inpainter": {}}
    path = tampered(tmp_path / "m.safetensors", metadata_set("config", json.dumps(config)))
    with pytest.raises(ArtganError, match=r"config.detector.width=100000 is out of bounds"):
        store.read_header(path)


def test_a_config_bigger_than_the_file_is_refused_before_it_is_built(tmp_path, recorded):
    path = recorded_model(tmp_path / "m.safetensors", {"width": 4096})  # the file holds width 4
    with pytest.raises(ArtganError, match=r"has shape \(4,.*'test-recorded' expects \(4096,"
                       ) as error:
        store.load_model(path, "style-transfer")
    assert_one_line_about(error, path)
    assert recorded == ["meta"], "only the meta device saw the 4096-wide network"


def test_bad_user_files_are_skipped_with_one_warning_each(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path))
    folder = store.user_model_dir() / "style-transfer"
    bad = [*malformed_files(folder), tampered(folder / "monet.safetensors", metadata_del("task"))]
    save(folder / "good.safetensors")
    code, out, err = run_main(monkeypatch, capsys, "models")
    warnings = err.splitlines()
    assert code == 0 and len(warnings) == len(bad), err
    assert all(line.startswith("warning: ignoring model: ") for line in warnings), err
    assert {path.name for path in bad} == {Path(line.split(": ")[2]).name for line in warnings}
    listed = {tuple(line.split()[:2]): line.split()[4] for line in out.splitlines()}
    assert listed[("style-transfer", "good")] == "user"
    assert listed[("style-transfer", "monet")] == "shipped"
    loaded = store.load_model(None, "style-transfer")  # the default, despite a bad user monet
    assert loaded.info.source == "shipped"


def test_card_text_cannot_drive_the_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path))
    folder = store.user_model_dir() / "style-transfer"
    card = {"summary": f"nice{OSC}\x9b31m\nstyle-transfer fake", "steps": f"3{OSC}"}
    save(folder / "evil.safetensors", card=card)
    tampered(folder / f"name{OSC}.safetensors", metadata_del("task"))
    _, out, err = run_main(monkeypatch, capsys, "models")
    for text in (out, err):
        assert not any(ord(c) < 32 and c != "\n" or 0x7f <= ord(c) <= 0x9f for c in text), text
    line = next(line for line in out.splitlines() if " evil " in line)
    assert line.endswith(r"nice\x1b]0;pwned\x07\x9b31m\x0astyle-transfer fake; "
                         r"3\x1b]0;pwned\x07 steps")
    assert r"name\x1b]0;pwned\x07.safetensors" in err
    _, out, _ = run_main(monkeypatch, capsys, "models", "--json")
    assert "\x1b" not in out
    evil = next(row for row in json.loads(out) if row["name"] == "evil")
    assert evil["card"] == card
