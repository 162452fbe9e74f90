"""artgan studio without a browser: the forms built from task options, what the server
accepts from a page, and how the studio starts, refuses and cleans up."""

from __future__ import annotations

import importlib.util
import socket

import numpy as np
import pytest
import torch

from artgan import plugins
from artgan.errors import ArtganError
from artgan.studio.files import Workspace, read_upload
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
