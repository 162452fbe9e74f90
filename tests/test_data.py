"""Training data: any folder of pictures becomes reproducible batches of square tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from artgan import data
from artgan.errors import ArtganError


def make_folder(root, count=3, size=(40, 30)):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(root)))
    for index in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{index:02d}.png")
    return root


@pytest.fixture
def mixed(tmp_path):
    """Every awkward kind of file a user might have, plus one corrupt one."""
    root = tmp_path / "mixed"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / "rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (50, 20, 4), dtype=np.uint8), "RGBA").save(
        root / "alpha.png"
    )
    Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), "L").save(root / "grey.png")
    deep = rng.integers(0, 65536, (20, 28), dtype=np.uint16)
    Image.fromarray(deep).save(root / "sub" / "deep16.png")
    tiny = Image.new("P", (3, 2), 5)
    tiny.putpalette(list(range(256)) * 3)  # Pillow writes an empty palette it cannot read
    tiny.save(root / "sub" / "tiny.bmp")
    Image.new("RGB", (900, 600), (200, 10, 10)).save(root / "sub" / "large.webp")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (root / "notes.txt").write_text("ignored")
    return root


@pytest.mark.parametrize("cache", [True, False])
def test_mixed_folder_items_and_corrupt_file(mixed, cache, capsys):
    dataset = data.ImageFolder(mixed, 16, cache=cache)
    items = [dataset[i] for i in range(len(dataset))]
    items += [dataset[i] for i in range(len(dataset))]  # a second epoch warns no more
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipping ")
    assert "broken.jpg" in lines[0]
    assert len(dataset) == (6 if cache else 7)  # without a cache it is found on first read
    for item in items:
        assert item.shape == (3, 16, 16) and item.dtype == torch.float32
        assert -1 <= item.min() and item.max() <= 1


def test_centre_crop_without_augmentation_is_fixed(tmp_path):
    root = tmp_path / "one"
    root.mkdir()
    pixels = np.zeros((20, 60, 3), dtype=np.uint8)
    pixels[:, 20:40] = 255  # a white centre square between black sides
    Image.fromarray(pixels).save(root / "wide.png")
    dataset = data.ImageFolder(root, 10, random_crop=False, flip=False)
    item = dataset[0]
    assert torch.equal(item, dataset[0]) and item.shape == (3, 10, 10)
    assert item.min() > 0.5  # white, bar a little resampling blur at the edges


def test_load_size_crops_at_the_loaded_scale(tmp_path):
    """CycleGAN's load/crop: pixels are cut out unscaled, so textures keep their size."""
    root = tmp_path / "stripes"
    root.mkdir()
    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    pixels[:, ::2] = 255  # one-pixel stripes survive only if nothing is resampled
    Image.fromarray(pixels).save(root / "stripes.png")
    crop = data.ImageFolder(root, 16, load_size=32, flip=False)[0]
    assert crop.shape == (3, 16, 16)
    assert set(crop.unique().tolist()) == {-1.0, 1.0}
    with pytest.raises(ArtganError, match="load size 8 must be at least the crop size 16"):
        data.ImageFolder(root, 16, load_size=8)


def test_missing_and_empty_folders(tmp_path, capsys):
    with pytest.raises(ArtganError, match="no such folder"):
        data.ImageFolder(tmp_path / "nope", 16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(ArtganError, match=r"empty: no images found \(looked for .jpg, .jpeg"):
        data.ImageFolder(tmp_path / "empty", 16)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"nope")
    with pytest.raises(ArtganError, match="could be read"):
        data.ImageFolder(tmp_path / "bad", 16)
    assert capsys.readouterr().err.startswith("warning: skipping ")


def batches(root, seed, workers=0, count=3):
    torch.manual_seed(seed)
    loader = data.make_loader(data.ImageFolder(root, 8), 2, seed=seed, workers=workers)
    stream = data.infinite(loader)
    return [next(stream) for _ in range(count)]


def test_loader_is_reproducible_with_a_seed(tmp_path):
    root = make_folder(tmp_path / "art", count=5)
    first, again, other = batches(root, 0), batches(root, 0), batches(root, 1)
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(first, other, strict=True))
    assert all(batch.shape == (2, 3, 8, 8) for batch in first)


def test_loader_with_a_worker_is_reproducible(tmp_path):
    root = make_folder(tmp_path / "art", count=4)
    first, again = batches(root, 3, workers=1, count=2), batches(root, 3, workers=1, count=2)
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))


def test_infinite_runs_past_an_epoch(tmp_path):
    loader = data.make_loader(data.ImageFolder(make_folder(tmp_path / "a"), 8), 2)
    stream = data.infinite(loader)
    assert len(loader) == 1
    assert len([next(stream) for _ in range(4)]) == 4


def test_too_few_images_for_the_batch(tmp_path):
    dataset = data.ImageFolder(make_folder(tmp_path / "few", count=3), 8)
    with pytest.raises(ArtganError, match="few has 3 images, fewer than the batch size 4"):
        data.make_loader(dataset, 4)
    assert len(data.make_loader(dataset, 4, drop_last=False)) == 1


def test_unpaired_sampling(tmp_path):
    a = data.ImageFolder(make_folder(tmp_path / "a", count=2, size=(12, 12)), 8)
    b = data.ImageFolder(make_folder(tmp_path / "b", count=5, size=(20, 10)), 8)
    pairs = data.UnpairedDataset(a, b)
    assert len(pairs) == 5
    item_a, item_b = pairs[3]
    assert item_a.shape == item_b.shape == (3, 8, 8)

    torch.manual_seed(7)
    picks = [int(torch.randint(0, 5, (), generator=pairs._random.get())) for _ in range(20)]
    torch.manual_seed(7)
    fresh = data.UnpairedDataset(a, b)
    assert picks == [int(torch.randint(0, 5, (), generator=fresh._random.get())) for _ in range(20)]
    assert len(set(picks)) > 1

    with pytest.raises(ArtganError, match="b has 5 images, fewer than the batch size 6"):
        data.make_loader(pairs, 6)
    batch_a, batch_b = next(data.infinite(data.make_loader(pairs, 4, seed=2)))
    assert batch_a.shape == batch_b.shape == (4, 3, 8, 8)
