"""``artgan restore`` from the command line: outputs, masks and one-line errors.

The task is put in front of the CLI directly (as the plugin manager would from the entry
point), so these tests do not depend on what is installed.
"""


import numpy as np
import pytest
from PIL import Image
from test_restore import save_tiny


@pytest.fixture
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {kind: str(save_tiny(folder / f"{kind}.safetensors", detect=kind))
            for kind in ("none", "all")}




@pytest.fixture
def picture(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    path = tmp_path / "scan.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def write_mask(path, mask: np.ndarray):
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return str(path)


def test_restore_with_a_mask_repaints_only_the_mask(restore_cli, models, picture, tmp_path):
    path, rgb = picture
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    mask[30:40, 10:90] = True
    before = path.read_bytes()
    code, err = restore_cli("restore", str(path), "--mask", write_mask(tmp_path / "m.png", mask),
                       "--model", models["none"], "--device", "cpu", "--save-mask")
    assert code == 0, err
    out = np.asarray(Image.open(tmp_path / "scan.restored.png"))
    assert np.array_equal(out[~mask], rgb[~mask])
    saved = np.asarray(Image.open(tmp_path / "scan.mask.png").convert("L"))
    assert np.array_equal(saved > 127, mask)
    assert path.read_bytes() == before


def test_nothing_to_restore_writes_nothing(restore_cli, models, picture, tmp_path):
    path, _ = picture
    code, err = restore_cli("restore", str(path), "--model", models["none"], "--device", "cpu")
    assert code == 0 and "nothing to restore (no damage found)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.png"]


def test_detect_only_writes_the_mask(restore_cli, models, picture, tmp_path):
    path, rgb = picture
    code, err = restore_cli("restore", str(path), "--detect-only", "--model", models["none"],
                       "--device", "cpu")
    assert code == 0, err
    mask = np.asarray(Image.open(tmp_path / "scan.mask.png").convert("L"))
    assert mask.shape == rgb.shape[:2] and not mask.any()


@pytest.mark.parametrize("case, message", [
    ("white", "the mask covers the whole picture: nothing is left to restore from"),
    ("size", "the mask is 60x45 but the image is 120x90; they must be the same size"),
    ("text", "not an image file"),
    ("corrupt", "corrupt or truncated image"),
    ("huge", "image too large"),
    ("missing", "no such file or folder"),
])
def test_bad_inputs_fail_with_one_line(restore_cli, models, picture, tmp_path, monkeypatch, case,
                                       message):
    path, rgb = picture
    mask = write_mask(tmp_path / "m.png", np.zeros(rgb.shape[:2], dtype=bool))
    if case == "white":
        mask = write_mask(tmp_path / "m.png", np.ones(rgb.shape[:2], dtype=bool))
    elif case == "size":
        mask = write_mask(tmp_path / "m.png", np.ones((45, 60), dtype=bool))
    elif case == "text":
        (tmp_path / "m.txt").write_text("not a mask")
        mask = str(tmp_path / "m.txt")
    elif case == "corrupt":
        path.write_bytes(path.read_bytes()[:200])
    elif case == "huge":
        monkeypatch.setenv("ARTGAN_MAX_PIXELS", "1000")
    elif case == "missing":
        mask = str(tmp_path / "nowhere.png")
    code, err = restore_cli("restore", str(path), "--mask", mask, "--model", models["all"],
                       "--device", "cpu")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "scan.restored.png").exists()


def test_never_writes_over_the_input(restore_cli, models, picture, tmp_path):
    path, rgb = picture
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    mask[5:9, 5:9] = True
    code, err = restore_cli("restore", str(path), "--mask", write_mask(tmp_path / "m.png", mask),
                       "--out", str(path), "--model", models["none"], "--device", "cpu")
    assert code == 1 and "refusing to overwrite input file" in err
    assert np.array_equal(np.asarray(Image.open(path)), rgb)


def test_remove_repaints_the_mask_and_needs_one(restore_cli, models, picture, tmp_path):
    path, rgb = picture
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    mask[20:50, 30:70] = True
    code, err = restore_cli("restore", str(path), "--remove", "--model", models["none"],
                       "--device", "cpu")
    assert code == 1 and err.strip() == "error: --remove needs --mask: it says what to take out"
    code, err = restore_cli("restore", str(path), "--remove", "--mask",
                       write_mask(tmp_path / "m.png", mask), "--model", models["none"],
                       "--device", "cpu")
    assert code == 0, err
    restored = np.asarray(Image.open(tmp_path / "scan.restored.png"))
    assert np.array_equal(restored[~mask], rgb[~mask])
