"""artgan studio without a browser: the forms built from task options, what the server
accepts from a page, and how the studio starts, refuses and cleans up."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from artgan import plugins
from artgan.errors import ArtganError
from artgan.studio.files import Workspace, download_stem, max_upload_bytes, read_upload
from artgan.studio.forms import fields
from artgan.studio.tabs import _whole, load_keywords, takes_pictures


def _form(task_name: str):
    task = plugins.get_task(task_name)
    return {field.name: field for field in fields(task.run_options(), load_keywords(task))}


def test_the_form_offers_what_load_takes_and_no_paths_or_devices():
    form = _form("style-transfer")
    assert {"reverse", "max_size", "tile", "backend"} <= set(form)
    assert "device" not in form and "style" not in form  # the model is its own dropdown
    assert form["tile"].default == 1024 and form["max_size"].default is None
    assert form["backend"].default == "auto"


def test_values_from_the_page_are_checked_as_the_cli_checks_them():
    form = _form("style-transfer")
    assert form["tile"].check(512.0) == 512
    assert form["max_size"].check("") is None and form["max_size"].check(" 640 ") == 640
    with pytest.raises(ArtganError, match="--tile: .*range"):
        form["tile"].check(8)
    with pytest.raises(ArtganError, match="--tile: 300.5 is not a whole number"):
        form["tile"].check(300.5)
    with pytest.raises(ArtganError, match="--max-size: "):
        form["max_size"].check("/etc/passwd")
    with pytest.raises(ArtganError, match="--backend: "):
        form["backend"].check("cuda-magic")


def test_tasks_get_the_tab_their_contract_asks_for():
    assert takes_pictures(plugins.get_task("style-transfer"))
    assert not takes_pictures(plugins.get_task("generate"))
    assert "studio_tab" in plugins.KINDS and "restore" in plugins.registry("studio_tab")


def test_the_page_cannot_name_a_model_file(tmp_path):
    from artgan.studio import Studio

    studio = Studio(Workspace(tmp_path / "studio"))
    task = plugins.get_task("style-transfer")
    for name in ("../../secret", str(tmp_path / "x.safetensors"), "no-such-style"):
        with pytest.raises(ArtganError, match="unknown style-transfer model"):
            studio.pipeline(task, name, {})


def test_an_upload_error_names_the_upload_not_the_server_path(tmp_path):
    stored = tmp_path / "uploads" / "abc123" / "notes.png"
    stored.parent.mkdir(parents=True)
    stored.write_text("not a picture")
    with pytest.raises(ArtganError) as caught:
        read_upload(str(stored))
    assert "notes.png" in str(caught.value) and str(tmp_path) not in str(caught.value)
    with pytest.raises(ArtganError, match="upload a picture first"):
        read_upload(None)


def test_workspace_names_results_itself_and_goes_away(tmp_path):
    workspace = Workspace(tmp_path / "studio")
    first, second = workspace.result_path("a.png"), workspace.result_path("a.png")
    assert first != second and first.parent.parent == workspace.results
    workspace.remove()
    assert not (tmp_path / "studio").exists()


def test_the_mask_is_what_was_painted_at_the_pictures_size():
    from artgan_restore.studio import _painted

    layer = np.zeros((6, 8, 4), np.uint8)
    layer[2:4, 3:5, 3] = 150
    mask = _painted({"layers": [layer, None]}, (6, 8))
    assert mask.dtype == torch.bool and mask.sum() == 4 and mask[2:4, 3:5].all()
    assert not _painted(None, (6, 8)).any()
    with pytest.raises(ArtganError, match="the mask is 8x6, the picture 10x6"):
        _painted({"layers": [layer]}, (6, 10))


def test_whole_numbers_from_sliders():
    assert _whole(3.0, "count", 1, 64) == 3
    for bad in (0, 65, 2.5, "x", None):
        with pytest.raises(ArtganError, match="count: give a whole number"):
            _whole(bad, "count", 1, 64)


def test_without_gradio_the_studio_says_which_extra(monkeypatch):
    from artgan.studio import running

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gradio" else real(name, *a))
    with pytest.raises(ArtganError, match=r'pip install "artgan\[studio\]"'):
        with running():
            pass


def test_another_host_warns_and_a_taken_port_is_one_line(capsys):
    pytest.importorskip("gradio")
    from artgan.studio import running

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ArtganError, match=f"cannot serve on 0.0.0.0:{port}"):
            with running("0.0.0.0", port):
                pass
    assert "reachable from other machines" in capsys.readouterr().err


def test_studio_help(cli):
    result = cli("studio", "--help")
    assert result.returncode == 0 and "--host" in result.stdout and "127.0.0.1" in result.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sigterm_stops_the_studio_and_removes_its_folder(tmp_path):
    pytest.importorskip("gradio")
    temp, port = tmp_path / "tmp", _free_port()
    temp.mkdir()
    with open(tmp_path / "stderr", "w") as err:
        studio = subprocess.Popen([sys.executable, "-m", "artgan", "studio", "--port", str(port)],
                                  env=dict(os.environ, TMPDIR=str(temp)), stderr=err)
    try:
        deadline = time.monotonic() + 240
        while True:  # until it answers
            assert studio.poll() is None, (tmp_path / "stderr").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the studio did not answer in 240 s"
                time.sleep(0.5)
        (folder,) = temp.glob("artgan-studio-*")
        studio.send_signal(signal.SIGTERM)
        assert studio.wait(timeout=60) == 0
    finally:
        if studio.poll() is None:
            studio.kill()
            studio.wait()
    assert not folder.exists() and list(temp.iterdir()) == []


def test_a_second_studio_neither_uses_nor_recreates_the_first_ones_folder():
    pytest.importorskip("gradio")
    from artgan.studio import running

    folders = []
    for _ in range(2):
        with running("127.0.0.1", _free_port()):
            folders.append(Path(os.environ["GRADIO_TEMP_DIR"]).parent)
            # gradio makes this folder at each launch, in its cache as it was at first import
            assert (folders[-1] / "uploads" / "vibe_edit_history").is_dir()
    assert folders[0] != folders[1] and not any(folder.exists() for folder in folders)


def _handlers(monkeypatch, tmp_path, task_name: str):
    """The event handlers of ``task_name``'s tab, as the page calls them, by name."""
    gr = pytest.importorskip("gradio")
    from artgan.studio import OFFLINE, Studio
    from artgan.studio.tabs import picture_tab

    for name, value in {**OFFLINE, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}.items():
        monkeypatch.setenv(name, value)
    studio = Studio(Workspace(tmp_path / "studio"))
    task, custom = plugins.get_task(task_name), plugins.registry("studio_tab")
    with gr.Blocks() as blocks:
        (custom.get(task_name) if task_name in custom else picture_tab)(studio, task)
    return studio, task, {block.fn.__name__: block.fn for block in blocks.fns.values()}


def _upload(tmp_path, name: str, size=(20, 16)) -> str:
    """A picture where gradio keeps uploads: its own folder, the browser's file name."""
    stored = tmp_path / "uploads" / "0123abcd" / name
    stored.parent.mkdir(parents=True)
    Image.new("RGB", size, (90, 120, 150)).save(stored)
    return str(stored)


def test_restore_takes_only_installed_models_from_the_page(monkeypatch, tmp_path):
    import gradio as gr

    _, _, handlers = _handlers(monkeypatch, tmp_path, "restore")
    picture = _upload(tmp_path, "photo.png")
    kept = (torch.zeros(3, 16, 20, dtype=torch.uint8), None, "photo")
    for name in ("../../secret", str(tmp_path / "x.safetensors"), "no-such-model"):
        with pytest.raises(gr.Error) as caught:
            handlers["detect"](picture, name)
        assert caught.value.message == f"unknown restore model {name!r}"
        with pytest.raises(gr.Error, match="unknown restore model"):
            handlers["restore"](None, kept, name, "repair damage")


@pytest.mark.parametrize("task_name, handler, model", [("restore", "detect", ["general"]),
                                                       ("style-transfer", "show", [])])
def test_an_upload_over_the_pixel_limit_is_one_line_in_the_page(monkeypatch, tmp_path, capsys,
                                                                  task_name, handler, model):
    import gradio as gr

    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "100")
    _, _, handlers = _handlers(monkeypatch, tmp_path, task_name)
    with pytest.raises(gr.Error) as caught:
        handlers[handler](_upload(tmp_path, "big.png"), *model)
    message = caught.value.message
    assert message.startswith("big.png: image too large: 20x16 is 320 pixels")
    assert "\n" not in message and str(tmp_path) not in message
    assert "Traceback" not in capsys.readouterr().err
    assert max_upload_bytes() == 400  # the page's size limit follows the pixel limit


def test_download_names_keep_only_safe_characters_of_the_uploads_name():
    assert download_stem("photo (1)") == "photo_1_"
    assert download_stem("..my photo;rm -rf ~") == "my_photo_rm_-rf_"
    assert download_stem("写真.2024") == "写真.2024"
    assert download_stem("..") == download_stem("") == "picture"
    assert download_stem("a" * 300) == "a" * 48


def test_restores_downloads_are_named_after_the_upload_safely(monkeypatch, tmp_path):
    studio, task, handlers = _handlers(monkeypatch, tmp_path, "restore")

    class Unchanged:  # a restorer that finds nothing and repaints nothing, instantly
        def find(self, pixels):
            return SimpleNamespace(mask=torch.zeros(pixels.shape[-2:], dtype=torch.bool),
                                   verdict=None)

        def prepare_mask(self, mask, pixels):
            return mask

        def inpaint(self, pixels, mask):
            return pixels

    monkeypatch.setattr(task, "restorer", lambda *args, **kwargs: Unchanged())
    value, kept, said = handlers["detect"](_upload(tmp_path, "..my photo;rm -rf ~.png"),
                                           task.default_model)
    assert kept[2] == "my_photo_rm_-rf_" and said.startswith("No damage found")
    value["layers"][0][4:8, 5:9, 3] = 150
    _, files = handlers["restore"](value, kept, task.default_model, "repair damage")
    assert [Path(f).name for f in files] == ["my_photo_rm_-rf_.restored.png",
                                             "my_photo_rm_-rf_.mask.png"]
    assert all(Path(f).parent.parent == studio.workspace.results for f in files)
