"""The weights in ``models/``: findable by name, small, carded, and working."""

import json

import numpy as np
import pytest
from PIL import Image

import artgan
from artgan import plugins, store

SHIPPED = sorted(store.shipped_model_dir().glob("*/*.safetensors"))
CARD_FACTS = ("data", "data_license", "steps", "hardware", "train_seconds", "quality")


def test_every_task_default_that_we_promise_is_shipped():
    names = {(path.parent.name, path.stem) for path in SHIPPED}
    assert ("style-transfer", "monet") in names
    assert ("generate", "monet") in names
    assert ("restore", "general") in names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_model_is_small_carded_and_loads(path):
    assert path.stat().st_size <= 10 * 1024 * 1024
    assert path.with_suffix(".md").is_file(), "every shipped model has a readable model card"
    info = store.find_model(path.stem, path.parent.name)
    assert info.source == "shipped"
    missing = [fact for fact in CARD_FACTS if info.card.get(fact) in (None, "")]
    assert not missing, f"card lacks {missing}"
    plugins.get_task(info.task)  # the task that reads it is installed
    store.load_model(path.stem, info.task, "cpu")


def test_shipped_monet_paints_both_ways():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    painted = artgan.stylize(photo, style="monet", device="cpu")
    assert painted.shape == photo.shape and painted.dtype == np.uint8
    assert not np.array_equal(painted, photo)
    to_photo = artgan.load("style-transfer", "monet", reverse=True, device="cpu")
    back = to_photo(Image.fromarray(painted))
    assert back.size == (64, 48)


def test_shipped_generator_samples_the_same_pictures_for_a_seed():
    first = artgan.generate(n=2, seed=3)  # the default generate model
    again = artgan.generate(n=2, seed=3)
    assert [image.size for image in first] == [(128, 128)] * 2
    assert [image.tobytes() for image in first] == [image.tobytes() for image in again]
    assert first[0].tobytes() != first[1].tobytes()


def test_models_command_lists_the_shipped_monet(cli):
    result = cli("models", "--task", "style-transfer", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    monet = next(row for row in rows if row["name"] == "monet")
    assert monet["source"] == "shipped"


def test_shipped_restore_model_repaints_the_mask_and_nothing_else():
    ys, xs = np.mgrid[0:96, 0:128]
    picture = np.stack([ys * 2, xs * 2, (ys + xs)], axis=-1).astype(np.uint8)  # smooth ramps
    damaged = picture.copy()
    mask = np.zeros((96, 128), dtype=bool)
    mask[40:43, 10:110] = True  # a light scratch
    damaged[mask] = 250
    restored = artgan.restore(damaged, mask=mask)  # the default restore model
    assert np.array_equal(restored[~mask], damaged[~mask])
    error = np.abs(restored[mask].astype(int) - picture[mask].astype(int)).mean()
    assert error < 8, f"the scratch was not painted back ({error:.1f} levels off)"
    automatic, found = artgan.restore(damaged, return_mask=True)
    assert automatic.shape == damaged.shape and found.shape == mask.shape
