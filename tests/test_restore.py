"""Restore task: damage synthesis, windowing, and pixels outside the mask left bit-identical.

Models here are tiny with random weights (what they paint does not matter, where they paint
does). ``save_tiny`` is shared with the other restore test files.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from artgan_restore import damage
from artgan_restore.model import ARCHITECTURE, build
from artgan_restore.restorer import Restorer
from artgan_restore.task import RestoreTask
from artgan_restore.windows import plan_windows
from PIL import Image

import artgan
from artgan import store
from artgan.errors import ArtganError

TINY = {
    "detector": {"width": 4, "depth": 2},
    "inpainter": {"width": 4, "downs": 2, "blocks": 1, "global_ratio": 0.5, "upsample": "resize"},
    "size": 64,
}


def save_tiny(path: Path, detect: str | None = None, seed: int = 0) -> Path:
    """A tiny random-weight model; ``detect`` "none" or "all" fixes the detector's answer."""
    torch.manual_seed(seed)
    networks = build(**TINY)
    with torch.no_grad():  # a trained head: the untrained one returns the smooth fill, which
        networks["inpainter"].head.weight.normal_(std=0.1)  # matches the input off the mask
    if detect is not None:
        head = networks["detector"].head[0]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.fill_(-20.0 if detect == "none" else 20.0)
    return store.save_model(networks, path, task="restore", architecture=ARCHITECTURE,
                            config=TINY, card={"summary": "random weights for tests"})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny.safetensors")


def spots_mask(height: int = 900, width: int = 1200) -> torch.Tensor:
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[100:104, 100:300] = True  # a scratch
    mask[500:530, 800:820] = True  # a loss
    mask[880:900, 0:25] = True  # a chipped corner
    return mask


def test_hooks_register_the_task_and_the_architecture():
    import artgan_restore

    tasks, architectures = [], {}
    artgan_restore.register_tasks(tasks.append)
    artgan_restore.register_architectures(architectures.__setitem__)
    assert [t.name for t in tasks] == ["restore"] and architectures == {ARCHITECTURE: build}
    assert {"--mask", "--detect-only", "--dilate", "--threshold"} <= {
        option for p in tasks[0].run_options() for option in p.opts}


# --- damage synthesis ---------------------------------------------------------------------


@pytest.mark.parametrize("level", ["thin", "medium", "large"])
def test_synthesis_is_seeded_and_its_mask_is_exact(level):
    image = torch.rand(3, 64, 64)
    damaged, mask = damage.synthesize(image, level=level, seed=3)
    again, mask_again = damage.synthesize(image, level=level, seed=torch.Generator().manual_seed(3))
    assert torch.equal(damaged, again) and torch.equal(mask, mask_again)
    assert mask.shape == (1, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0}
    outside = mask.expand_as(image) == 0
    assert torch.equal(damaged[outside], image[outside]), "pixels outside the mask changed"
    changed = (damaged != image).any(dim=0)
    assert not (changed & (mask[0] == 0)).any()
    step = (damaged - image).abs().amax(dim=0)
    assert (step[mask[0] == 1] >= damage.VISIBLE_CHANGE - 1e-6).all(), "invisible damage marked"
    assert 0 < mask.mean() < 0.9
    other, _ = damage.synthesize(image, level=level, seed=4)
    assert not torch.equal(other, damaged)


def test_synthesis_of_chosen_kinds_and_bad_names():
    image = torch.rand(2, 3, 48, 48)
    damaged, mask = damage.synthesize(image, kinds=["stains", "holes"], level="large", seed=0)
    assert damaged.shape == image.shape and mask.shape == (2, 1, 48, 48)
    with pytest.raises(ArtganError, match="unknown damage kind"):
        damage.synthesize(image, kinds=["mould"])
    with pytest.raises(ArtganError, match="unknown damage level"):
        damage.synthesize(image, level="huge")


def test_damaged_scan_is_an_8_bit_picture_with_a_bool_mask_of_the_chosen_kinds():
    picture = (torch.rand(3, 48, 48) * 255).to(torch.uint8)
    damaged, mask = damage.damaged_scan(picture, "medium", seed=2)
    assert damaged.dtype == torch.uint8 and mask.dtype == torch.bool and mask.shape == (48, 48)
    assert torch.equal(damaged[:, ~mask], picture[:, ~mask]) and mask.any()
    same = damage.damaged_scan(picture, "medium", seed=2, kinds=damage.LEVELS["medium"])
    assert torch.equal(same[0], damaged) and torch.equal(same[1], mask)
    _, stains = damage.damaged_scan(picture, "medium", seed=2, kinds=["stains"])
    assert not torch.equal(stains, mask)


def test_free_form_masks_range_from_scratches_to_large_holes():
    masks = damage.free_form_masks(40, 64, 64, torch.Generator().manual_seed(0))
    area = masks.mean(dim=(1, 2, 3))
    assert masks.shape == (40, 1, 64, 64) and set(masks.unique().tolist()) <= {0.0, 1.0}
    assert float(area.max()) <= 0.45 and float(area.min()) > 0
    assert float(area.min()) < 0.05 and float(area.max()) > 0.15


def test_random_damage_can_leave_pictures_clean():
    images = torch.rand(3, 3, 32, 32)
    damaged, mask, opaque = damage.random_damage(images, torch.Generator().manual_seed(0),
                                                 clean=1.0)
    assert torch.equal(damaged, images) and not mask.any()


def test_random_damage_at_the_benchmark_levels_draws_their_kinds_and_severities(monkeypatch):
    drawn = {}

    def recorder(kind, function):
        def record(draw, image, severity, on, *rest):
            drawn[kind] = (on.clone(), severity.clone())
            return function(draw, image, severity, on, *rest)
        return record

    for kind, function in list(damage._KIND_FUNCTIONS.items()):
        monkeypatch.setitem(damage._KIND_FUNCTIONS, kind, recorder(kind, function))
    damage.random_damage(torch.rand(60, 3, 32, 32), torch.Generator().manual_seed(0),
                         clean=0.0, levels=1.0)
    on = {kind: flags for kind, (flags, _) in drawn.items()}
    severity = drawn["scratches"][1]
    assert not (on["dust"] | on["creases"] | on["silvering"]).any()
    thin = on["scratches"] & ~on["craquelure"] & ~on["holes"]
    medium = on["craquelure"] & on["stains"]
    large = on["holes"] & ~on["scratches"]
    assert torch.equal(thin | medium | large, torch.ones(60, dtype=torch.bool))
    assert thin.any() and medium.any() and large.any()  # each level drawn
    for level, which in (("thin", thin), ("medium", medium), ("large", large)):
        low, high = damage.SEVERITY[level]
        assert ((severity[which] >= low) & (severity[which] <= high)).all(), level


# --- windows ------------------------------------------------------------------------------


def test_windows_only_cover_the_damage():
    mask = spots_mask()
    plan = plan_windows(mask, size=64, margin=8)
    covered = torch.zeros_like(mask)
    written = torch.zeros_like(mask)
    for window in plan.windows:
        covered[window.top : window.bottom, window.left : window.right] = True
        top, left, bottom, right = window.core
        written[top:bottom, left:right] = True
    assert bool(written[mask].all()), "some damaged pixel is in no window core"
    assert covered.float().mean() < 0.05, "windows reach far beyond the damage"
    assert not covered[300:450, 400:700].any() and not covered[0:50, 1100:].any()


def test_a_hole_wider_than_the_window_is_filled_downscaled():
    mask = torch.zeros(600, 600, dtype=torch.bool)
    mask[100:400, 150:450] = True
    mask[550:552, 0:200] = True
    plan = plan_windows(mask, size=64, margin=8)
    scales = {window.scale for window in plan.windows}
    assert 1 in scales and max(scales) >= 8
    assert plan.windows[0].scale == 1, "thin damage goes first"


def test_a_dense_crack_network_is_filled_at_full_resolution():
    mask = torch.zeros(600, 600, dtype=torch.bool)
    mask[100:400:6, 100:400] = True  # cracks 6 px apart touch every cell of a wide area,
    mask[100:400, 100:400:7] = True  # but no pixel is more than 3 px from intact paint
    plan = plan_windows(mask, size=64, margin=8)
    assert {window.scale for window in plan.windows} == {1}


def test_windows_run_in_batches_that_do_not_overlap():
    mask = torch.zeros(1000, 1000, dtype=torch.bool)
    mask[5:995:9, 5:995] = True  # scratches across the picture: every core holds damage
    mask[300:420, 300:420] = True  # and a hole filled downscaled
    plan = plan_windows(mask, size=128, margin=16)
    cap = 16 * 128 * 128
    groups = plan.batches(max_pixels=cap)
    assert [window for group in groups for window in group] == plan.windows
    for group in groups:
        assert len({(window.scale, window.shape) for window in group}) == 1
        assert not any(a.overlaps(b) for i, a in enumerate(group) for b in group[i + 1:])
        assert len(group) == 1 or sum(window.area for window in group) <= cap
    # only the last group of each pass (9 at most per scale) is less than full: the windows
    # pushed inside the picture at its right and bottom edges have passes of their own
    full = [len(group) == 16 for group in groups if group[0].scale == 1]
    assert full.count(True) >= 4 and full.count(False) <= 9


def test_batched_windows_paint_what_one_window_at_a_time_would(tiny_model, monkeypatch):
    import artgan_restore.restorer as restorer_module

    restorer = Restorer.load(tiny_model, "cpu")
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    mask = torch.zeros(300, 400, dtype=torch.bool)
    for top in range(10, 290, 9):
        mask[top : top + 3, 5:395] = True  # bands in every window,
    mask[100:120, 100:122] = True  # and a hole in one: their smooth fills differ in depth
    batched = restorer.inpaint(image, mask)
    monkeypatch.setattr(restorer_module, "BATCH_WINDOWS", 1)
    one_by_one = restorer.inpaint(image, mask)
    assert (batched.int() - one_by_one.int()).abs().max() <= 1  # float rounding at most


class EdgeHalo(torch.nn.Module):
    """A stand-in inpainter that fills holes grey and brightens their pixels within 2 px of
    picture, as a trained one does at a straight edge between picture and hole."""

    multiple = 8

    def forward(self, image, mask):
        near_picture = mask * F.max_pool2d(1 - mask, 5, stride=1, padding=2)
        return (0.5 + 0.2 * near_picture).expand_as(image)


def test_a_hole_across_two_cores_shows_no_seam():
    """The later window reads the earlier one's fill as picture: where a hole spans both
    cores it would paint the band it paints at a hole's edge along the cores' border."""
    restorer = Restorer(torch.nn.ModuleDict({"inpainter": EdgeHalo()}), 64, torch.device("cpu"))
    image = torch.full((3, 64, 256), 40, dtype=torch.uint8)
    mask = torch.zeros(64, 256, dtype=torch.bool)
    mask[24:40, 8:248] = True  # 16 px high: filled at full scale, across five 48 px cores
    plan = restorer.plan(mask)
    assert len(plan.windows) > 2 and {window.scale for window in plan.windows} == {1}
    restored = restorer.inpaint(image, mask).int()
    middle = restored[:, 28:36, 12:244]  # more than 2 px from the picture around the hole
    assert (middle - 128).abs().max() <= 4, "a band where two windows meet"
    assert restored[:, 24, 12:244].float().mean() > 160  # the stand-in's halo at the edge
    assert torch.equal(restored[:, ~mask], image[:, ~mask])


# --- restoring ----------------------------------------------------------------------------


def test_pixels_outside_the_mask_are_bit_identical(tiny_model):
    restorer = Restorer.load(tiny_model, "cpu")
    image = torch.randint(0, 256, (3, 900, 1200), dtype=torch.uint8)
    mask = spots_mask()
    restored = restorer.inpaint(image, mask)
    assert restored.dtype == torch.uint8 and restored.shape == image.shape
    assert torch.equal(restored[:, ~mask], image[:, ~mask])
    assert (restored[:, mask] != image[:, mask]).any(), "nothing was repainted"


def test_remove_ignores_what_lies_under_the_mask(tiny_model):
    image = torch.randint(0, 256, (3, 200, 300), dtype=torch.uint8)
    mask = torch.zeros(200, 300, dtype=torch.bool)
    mask[50:90, 100:180] = True
    other = image.clone()
    other[:, mask] = 255 - other[:, mask]  # a different object under the same mask
    removing = RestoreTask().restorer(str(tiny_model), "cpu", remove=True)
    removed = removing.inpaint(image, mask)
    assert torch.equal(removed, removing.inpaint(other, mask))
    assert torch.equal(removed[:, ~mask], image[:, ~mask])
    reading = RestoreTask().restorer(str(tiny_model), "cpu")
    assert not torch.equal(reading.inpaint(image, mask), reading.inpaint(other, mask))
    with pytest.raises(ArtganError, match="needs a mask"):
        artgan.restore(image, remove=True, model=str(tiny_model), device="cpu")
    floats = image.float() / 255
    float_removed = removing.inpaint(floats, mask)
    assert torch.equal(float_removed[:, ~mask], floats[:, ~mask])
    assert (float_removed[:, mask] * 255 - removed[:, mask].float()).abs().mean() < 2


def test_python_api_keeps_the_kind_and_returns_the_mask(tiny_model):
    rgb = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    mask = np.zeros((50, 70), dtype=bool)
    mask[10:20, 30:40] = True
    out, used = artgan.restore(Image.fromarray(rgb), mask=mask, return_mask=True,
                               model=str(tiny_model), device="cpu")
    assert isinstance(out, Image.Image) and isinstance(used, Image.Image)
    pixels = np.asarray(out)
    assert np.array_equal(pixels[~mask], rgb[~mask])
    assert np.array_equal(np.asarray(used) > 127, mask)
    pipeline = RestoreTask().load(str(tiny_model), device="cpu")
    via_api = pipeline(rgb, mask=mask)
    assert isinstance(via_api, np.ndarray) and np.array_equal(via_api, pixels)
    floats = torch.rand(3, 50, 70)
    result = pipeline(floats, mask=torch.from_numpy(mask))
    assert torch.equal(result[:, ~torch.from_numpy(mask)], floats[:, ~torch.from_numpy(mask)])


def test_bad_masks_are_refused(tiny_model):
    restorer = Restorer.load(tiny_model, "cpu")
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    with pytest.raises(ArtganError, match="the mask is 30x40 but the image is 60x40"):
        restorer.prepare_mask(torch.zeros(40, 30, dtype=torch.bool), image)
    with pytest.raises(ArtganError, match="covers the whole picture"):
        restorer.inpaint(image, torch.ones(40, 60, dtype=torch.bool))
    unchanged, used = restorer.restore(image, torch.zeros(40, 60, dtype=torch.bool))
    assert unchanged is image and not used.any()
    with pytest.raises(ArtganError, match="threshold"):
        Restorer(restorer.networks, 64, torch.device("cpu"), threshold=1.5)
