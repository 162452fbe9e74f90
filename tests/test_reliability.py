"""What artgan promises about the user's files: nothing is lost, nothing lands elsewhere.

* inputs are never written over, the user's masks included (``--save-mask``,
  ``--detect-only``);
* two inputs whose results would land on one file are refused before anything is
  written, so no result silently replaces another and the summary stays true;
* outputs stay under ``--out``, whatever ``..`` a glob holds.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_restore import save_tiny

from artgan.batch import output_paths
from artgan.errors import ArtganError


def save_picture(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def restore(restore_cli, tmp_path):
    """``artgan restore ARGS`` in-process with a tiny model that finds no damage."""
    model = str(save_tiny(tmp_path / "models" / "none.safetensors", detect="none"))
    return lambda *args: restore_cli("restore", *args, "--model", model, "--device", "cpu")


def test_save_mask_never_writes_over_the_users_mask(restore, tmp_path):
    photo = save_picture(tmp_path / "photo.png")
    mask = tmp_path / "photo.mask.png"
    drawn = np.zeros((48, 64), dtype=np.uint8)
    drawn[10:20, 10:30] = 255
    Image.fromarray(drawn).save(mask)
    before = mask.read_bytes()
    code, err = restore(str(photo), "--mask", str(mask), "--save-mask", "--dilate", "2")
    assert code == 1 and "would write over" in err and str(mask) in err
    assert mask.read_bytes() == before
    assert not (tmp_path / "photo.restored.png").exists()  # refused before any work


def test_detect_only_never_writes_over_the_users_mask(restore, tmp_path):
    photo = save_picture(tmp_path / "photo.png")
    mask = tmp_path / "photo.mask.png"
    Image.new("L", (64, 48), 255).save(mask)
    before = mask.read_bytes()
    code, err = restore(str(photo), "--mask", str(mask), "--detect-only")
    assert code == 1 and "refusing to overwrite input file" in err
    assert mask.read_bytes() == before


def test_files_of_one_name_from_two_folders_are_refused(tmp_path):
    first = save_picture(tmp_path / "in" / "a" / "pic.png")
    second = save_picture(tmp_path / "in" / "c" / "pic.png", seed=1)
    with pytest.raises(ArtganError, match="would both be written to"):
        output_paths([str(first), str(second)], str(tmp_path / "out"), "x")
    # given as their folder, outputs mirror its layout and stay apart
    pairs = output_paths([str(tmp_path / "in")], str(tmp_path / "out"), "x")
    assert sorted(str(target.relative_to(tmp_path)) for _, target in pairs) == [
        "out/a/pic.png", "out/c/pic.png"]


def test_detect_only_masks_of_one_stem_are_refused(restore, tmp_path):
    save_picture(tmp_path / "photo.png")
    Image.open(tmp_path / "photo.png").save(tmp_path / "photo.jpg")
    code, err = restore(str(tmp_path / "photo.png"), str(tmp_path / "photo.jpg"),
                        "--detect-only")
    assert code == 1 and "would both be written to" in err
    assert not (tmp_path / "photo.mask.png").exists()


def test_restore_of_one_name_from_two_folders_writes_nothing(restore, tmp_path):
    first = save_picture(tmp_path / "in" / "a" / "pic.png")
    second = save_picture(tmp_path / "in" / "c" / "pic.png", seed=1)
    code, err = restore(str(first), str(second), "--out", str(tmp_path / "out"))
    assert code == 1 and "would both be written to" in err
    assert not (tmp_path / "out").exists()


def test_a_glob_climbing_out_stays_under_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_picture(tmp_path / "in" / "sub" / "x.png")
    save_picture(tmp_path / "in" / "ok.png")
    (tmp_path / "out" / "x").mkdir(parents=True)
    pairs = output_paths(["in/*/../../out/x/../../in/ok.png"], "o", "x")
    assert [(str(source), str(target)) for source, target in pairs] == [
        ("in/sub/../../out/x/../../in/ok.png", "o/ok.png")]
