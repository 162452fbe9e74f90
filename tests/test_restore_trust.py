"""Automatic restore never quietly repaints a picture it should leave alone.

What artgan promises here: a detection reaching more than ``MAX_SHARE`` of a picture is
refused (one line, exit 1, nothing written) unless ``--force``, or more than
``MAX_CERTAIN_SHARE`` where the detector is certain of nearly all of it; a picture the detector is
sure of nowhere is left alone as undamaged; damage the detector calls opaque is not read by
the inpainter; and the model's card sets the default threshold.
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from artgan_restore import damage
from artgan_restore.components import LOSS_SHARE
from artgan_restore.detector import (
    LOOK_PAD,
    LOOKS,
    PYRAMID_SIDE,
    DamageDetector,
    detect_maps,
    look_back,
    look_regions,
    look_view,
    pyramid_factors,
    pyramid_logits,
    shrink,
    tiled_logits,
)
from artgan_restore.looks import clean_looks, doubled, facades, rims
from artgan_restore.model import build
from artgan_restore.restorer import (
    MAX_CERTAIN_SHARE,
    MAX_SHARE,
    OPAQUE_GROW,
    Finding,
    Restorer,
    RestoreRefusedError,
    model_threshold,
)
from artgan_restore.task import RestorePipeline, RestoreWarning
from artgan_restore.training import _fitting
from PIL import Image
from test_restore import TINY, save_tiny
from torch import nn

import artgan
from artgan.errors import ArtganError
from artgan.tiles import core_context


class RedDetector(nn.Module):
    """A stand-in detector: pixels whose red channel is above 0.9 are damage, with logit
    ``sureness`` (20, sure, where blue is above 0.9 too); the damage hides the picture
    where green is above 0.9 too."""

    multiple = 4
    outputs = 2

    def __init__(self, sureness: float = 20.0):
        super().__init__()
        self.sureness = sureness
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the module a device

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        red, green, blue = image[:, :1] > 0.9, image[:, 1:2] > 0.9, image[:, 2:] > 0.9
        damage = torch.where(red, torch.where(blue, 20.0, self.sureness), -20.0)
        hides = torch.where(red & green, 20.0, -20.0)
        return torch.cat([damage, hides], dim=1)


def restorer_with(detector: nn.Module, **options) -> Restorer:
    torch.manual_seed(0)
    networks = build(**TINY)
    with torch.no_grad():
        networks["inpainter"].head.weight.normal_(std=0.1)
    networks["detector"] = detector
    return Restorer(networks, TINY["size"], torch.device("cpu"), **{"dilate": 0, **options})


def picture_with_marks(share: float, seed: int = 0) -> torch.Tensor:
    """A (3, 96, 96) uint8 picture with no red above 0.9 but in the top ``share`` of rows."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 200, (3, 96, 96)).astype(np.uint8)
    rows = round(96 * share)
    pixels[0, :rows] = 250
    return torch.from_numpy(pixels)


def test_sure_small_damage_is_repainted():
    restorer = restorer_with(RedDetector())
    image = picture_with_marks(0.05)
    restored, mask = restorer.restore(image)
    assert mask.float().mean() == pytest.approx(5 / 96, abs=1e-3)
    assert torch.equal(restored[:, ~mask], image[:, ~mask])
    assert not torch.equal(restored[:, mask], image[:, mask])


def test_detected_damage_is_repainted_as_found_unless_asked_to_grow():
    """Growing a detection hides real picture around the damage from the inpainter."""
    image = picture_with_marks(0.05)
    found = restorer_with(RedDetector(), dilate=None).find(image)
    assert found.mask.any() and torch.equal(found.mask, found.marks)
    grown = restorer_with(RedDetector(), dilate=2).find(image)
    assert grown.mask.sum() > found.mask.sum()


def doubtful(image: torch.Tensor) -> torch.Tensor:
    """``image`` with its marks doubtful (for ``RedDetector(sureness=1.5)``: p = 0.82) but
    in their first row, which the detector is sure and certain of."""
    image = image.clone()
    image[2, 0] = 250
    return image


def test_too_much_damage_is_refused_unless_forced():
    restorer = restorer_with(RedDetector(sureness=1.5))
    image = doubtful(picture_with_marks(MAX_SHARE + 0.05))
    assert restorer.find(image).certainty < 0.2
    with pytest.raises(RestoreRefusedError, match="more than the 10% artgan repaints unasked"):
        restorer.restore(image)
    restored, mask = restorer.restore(image, force=True)
    assert mask.any() and not torch.equal(restored, image)


def test_damage_the_detector_is_certain_of_may_reach_further():
    """Holes and losses are found with certainty, false alarms are not: a certain detection
    is repainted up to MAX_CERTAIN_SHARE, a doubtful one of the same size is refused."""
    image = picture_with_marks(MAX_SHARE + 0.05)
    finding = restorer_with(RedDetector()).find(image)
    assert finding.certainty == 1.0 and MAX_SHARE < finding.reach < MAX_CERTAIN_SHARE
    assert finding.verdict is None
    assert restorer_with(RedDetector(sureness=1.5)).find(doubtful(image)).too_much
    wider = picture_with_marks(MAX_CERTAIN_SHARE + 0.05)
    with pytest.raises(RestoreRefusedError, match="more than the 20% artgan repaints unasked"):
        restorer_with(RedDetector()).restore(wider)


def test_thin_marks_spread_over_the_picture_are_refused_by_their_reach():
    """A lattice marked line by line covers little of a picture but reaches most of it."""
    restorer = restorer_with(RedDetector())
    image = picture_with_marks(0.0)
    image[0, ::12] = 250  # one row in 12: 8% marked, everything within 3 px of a mark
    finding = restorer.find(image)
    assert finding.marked < MAX_SHARE < MAX_CERTAIN_SHARE < finding.reach
    with pytest.raises(RestoreRefusedError, match="reaches"):
        restorer.restore(image)


def test_the_safety_net_judges_what_the_detector_suspects_whatever_the_threshold():
    """A lattice the detector doubts (p = 0.2) but for one sure pixel per bar: above the
    threshold only the sure pixels are marked, which reach little, but what it suspects
    reaches most of the picture, so a higher threshold cannot slip it under the bound."""
    image = picture_with_marks(0.0)
    image[0, ::12] = 250
    image[2, ::12, 0] = 250  # one sure pixel per bar
    finding = restorer_with(RedDetector(sureness=-1.4), threshold=0.5).find(image)
    assert finding.marked < 0.01 and finding.reach > MAX_SHARE
    assert finding.suspects.float().mean() > 0.08 and finding.certainty < 0.05
    with pytest.raises(RestoreRefusedError, match="what it suspects"):
        restorer_with(RedDetector(sureness=-1.4), threshold=0.5).restore(image)
    # below SUSPECT the threshold itself is what is suspected
    low = restorer_with(RedDetector(sureness=-2.5), threshold=0.05).find(image)
    assert torch.equal(low.suspects, low.marks) and low.marked > 0.08


def test_a_mask_grown_past_the_reach_is_bounded_and_named_by_what_it_repaints():
    # 4 rows: reach 7 rows (7%), grown by 6 px 16 rows
    image = doubtful(picture_with_marks(0.04))
    finding = restorer_with(RedDetector(sureness=1.5), dilate=6).find(image)
    assert finding.reach < MAX_SHARE < finding.share
    assert f"reaches {finding.reach:.1%}" in finding.verdict
    assert f"would repaint {finding.share:.1%}" in finding.verdict


def test_a_detection_the_detector_is_nowhere_sure_of_is_dropped():
    restorer = restorer_with(RedDetector(sureness=1.0))  # p = 0.73: above 0.5, below sure
    image = picture_with_marks(0.05)
    assert not restorer.find(image).mask.any()
    image[2, 2, 40:44] = 250  # four sure pixels: the whole detection counts again
    finding = restorer.find(image)
    assert finding.marked == pytest.approx(5 / 96, abs=1e-3) and finding.sure == 4


def test_a_detection_the_detector_is_hardly_sure_of_leaves_the_picture_alone():
    restorer = restorer_with(RedDetector(sureness=1.0))
    image = picture_with_marks(0.05)
    image[2, 2, 40:44] = 250  # sure of 4 pixels, fewer than MIN_SURE_PIXELS
    finding = restorer.find(image)
    assert finding.mask.any() and "looks undamaged" in finding.verdict
    pipeline = RestorePipeline(restorer)
    with pytest.warns(RestoreWarning, match="looks undamaged"):
        restored, mask = pipeline(image, return_mask=True)
    assert torch.equal(restored, image) and not mask.any()
    forced = pipeline(image, force=True)
    assert not torch.equal(forced, image)


def test_the_api_raises_for_too_much_damage():
    pipeline = RestorePipeline(restorer_with(RedDetector()))
    with pytest.raises(RestoreRefusedError):
        pipeline(picture_with_marks(0.5))


def test_finding_without_damage_has_no_verdict():
    empty = torch.zeros(10, 10, dtype=torch.bool)
    assert Finding(empty, empty, empty, empty, 0).verdict is None


def test_opaque_damage_is_not_read():
    """Two pictures differing only under opaque damage are repaired alike."""
    restorer = restorer_with(RedDetector())
    first = picture_with_marks(0.1)
    first[1, :10] = 250  # red and green: opaque
    second = first.clone()
    second[2, :10] = torch.randint(0, 256, (10, 96), dtype=torch.uint8)  # what lies under
    mask = torch.zeros(96, 96, dtype=torch.bool)
    mask[:10] = True
    assert torch.equal(restorer.opaque(first, mask), mask)
    assert torch.equal(restorer.inpaint(first, mask), restorer.inpaint(second, mask))
    # translucent damage (red only) is read: what lies under changes the repair
    first[1, :10], second[1, :10] = 100, 100
    assert not restorer.opaque(first, mask).any()
    assert not torch.equal(restorer.inpaint(first, mask), restorer.inpaint(second, mask))


def test_pictures_too_small_are_refused_in_one_line():
    restorer = restorer_with(RedDetector())
    with pytest.raises(ArtganError, match="8x8 px; restore needs at least 16"):
        restorer.restore(torch.zeros(3, 8, 8, dtype=torch.uint8))


def test_the_card_sets_the_default_threshold(tmp_path):
    assert model_threshold({"threshold": 0.8}) == 0.8
    assert model_threshold({}) == 0.5 and model_threshold({"threshold": "x"}) == 0.5
    path = save_tiny(tmp_path / "t.safetensors")
    from artgan.store import update_card

    update_card(path, {"threshold": 0.7})
    assert Restorer.load(path, "cpu").threshold == 0.7
    assert Restorer.load(path, "cpu", threshold=0.6).threshold == 0.6


def test_detector_opacity_output_and_old_heads_growing_into_it():
    detector = DamageDetector(width=4, depth=2, opacity=True)
    assert detector(torch.rand(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    maps = detect_maps(detector, torch.rand(3, 40, 40))
    assert maps.damage.shape == maps.hides.shape == maps.sure.shape == (40, 40)
    old = DamageDetector(width=4, depth=2).state_dict()
    grown = _fitting(old, detector.state_dict())
    assert torch.equal(grown["head.0.weight"][:4], old["head.0.weight"])
    assert grown["head.0.weight"].shape == detector.state_dict()["head.0.weight"].shape


def test_a_doubtful_picture_is_judged_on_the_mean_of_its_looks():
    torch.manual_seed(0)
    detector = DamageDetector(width=4, depth=2).eval()  # not mirror-symmetric
    with torch.no_grad():
        detector.head[0].bias.fill_(8.0)  # every pixel doubtful
        detector.head[0].weight.normal_(std=1.0)
    picture = torch.randint(0, 256, (3, 40, 56), dtype=torch.uint8)
    [(where, logits)] = list(tiled_logits(detector, picture, margin=8))
    crop = core_context(picture, where, 8, detector.multiple)
    with torch.no_grad():
        looks = [look_back(detector(look_view(crop, *look)), *look)
                 for look in (((), 0), *LOOKS)]
    expected = torch.stack(looks).mean(0)[0, :, 8:48, 8:64]
    first = looks[0][0, :, 8:48, 8:64]
    assert (logits - expected).abs().max() < 0.05  # bf16 autocast where the CPU has it
    assert (first - expected).abs().max() > 0.1


def test_only_cells_holding_doubtful_pixels_are_looked_at_again():
    calls = []
    detector = RedDetector(sureness=2.0)
    detector.register_forward_hook(lambda *_: calls.append(1))
    clean = torch.zeros(3, 600, 600, dtype=torch.uint8)
    list(tiled_logits(detector, clean))
    assert len(calls) == 1
    calls.clear()
    doubtful = clean.clone()
    doubtful[0, 300:310, 300:310] = 250  # in the middle one of the 3x3 cells
    [(_, logits)] = list(tiled_logits(detector, doubtful))
    assert len(calls) == 2  # the tile, then its doubtful cell's views at once
    assert torch.allclose(logits[0, 300:310, 300:310], torch.tensor(2.0))  # seen alike in each
    calls.clear()
    list(tiled_logits(detector, doubtful, looks=False))
    assert len(calls) == 1  # the opacity of a given mask: no second looks


def test_neighbouring_doubtful_cells_are_looked_at_as_one_rectangle_around_their_doubt():
    doubtful = torch.zeros(600, 600, dtype=torch.bool)
    doubtful[10:20, 10:500] = True  # across two of the top row's three 256 px cells
    doubtful[300, 300] = True  # alone in the middle cell
    doubtful[520, 100] = doubtful[590, 590] = True  # the bottom row: two cells apart
    regions = look_regions(doubtful, 256, 16)
    start = lambda px: (px - LOOK_PAD) // 16 * 16  # noqa: E731 - moved back onto the grid
    assert regions == [(0, 20 + LOOK_PAD, 0, 512),
                       (start(300), 301 + LOOK_PAD, start(300), 301 + LOOK_PAD),
                       (512, 521 + LOOK_PAD, start(100), 101 + LOOK_PAD),  # not past its cell
                       (start(590), 600, start(590), 600)]
    covered = torch.zeros_like(doubtful)
    for top, bottom, left, right in regions:
        assert not covered[top:bottom, left:right].any()  # no pixel looked at twice
        covered[top:bottom, left:right] = True
    assert covered[doubtful].all()


class ThinLineDetector(nn.Module):
    """A stand-in detector that, like the real one, knows damage at one scale only: a
    pixel is damage where it is brighter by 0.5 than the pixels 3 px to its left and right
    (a bright upright line at most 5 px wide)."""

    multiple = 4
    outputs = 1

    def __init__(self):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        grey = image.mean(dim=1, keepdim=True)
        padded = F.pad(grey, (3, 3, 0, 0), mode="replicate")
        sides = torch.maximum(padded[..., :-6], padded[..., 6:])
        return torch.where(grey - sides > 0.5, 20.0, -20.0)


def test_the_pyramid_shrinks_a_picture_while_its_shorter_side_stays_as_learnt():
    assert pyramid_factors(PYRAMID_SIDE * 2 - 1, 4000) == []
    assert pyramid_factors(3000, 4000) == [2, 4, 8]  # 1500, 750, 375 px
    assert pyramid_factors(1024, 1024) == [2, 4]


def test_a_picture_shrunk_by_2_twice_is_the_picture_shrunk_by_4():
    picture = torch.randint(0, 256, (3, 600, 808), dtype=torch.uint8)
    assert torch.allclose(shrink(shrink(picture, 2), 2), shrink(picture, 4), atol=1e-6)
    odd = picture[:, :599, :805]  # sides replicated at each step: the edge stays a picture's
    twice = shrink(shrink(odd, 2), 2)
    assert twice.shape == shrink(odd, 4).shape == (3, 150, 202)
    assert torch.allclose(twice[:, :-1, :-1], shrink(odd, 4)[:, :-1, :-1], atol=1e-6)


def test_each_view_of_a_second_look_is_put_back_where_the_pictures_pixels_are():
    picture = torch.rand(1, 2, 12, 10)
    for look in LOOKS:
        view = look_view(picture, *look)
        assert view.shape == picture.shape and not torch.equal(view, picture)
        assert torch.equal(look_back(view, *look)[..., 1:, 1:], picture[..., 1:, 1:])


def test_damage_too_wide_for_the_detector_is_found_on_a_shrunk_level():
    picture = torch.zeros(3, 1024, 1024, dtype=torch.uint8)
    picture[:, :, 500:512] = 255  # 12 px wide: 3 px on the level shrunk by 4
    picture[:, :, 200] = 255  # a hairline the full scale sees and the shrunk levels blur
    damage = detect_maps(ThinLineDetector(), picture).damage
    assert damage[:, 501:511].float().mean() > 0.9
    assert damage[:, 200].all()
    assert not damage[:, 205:495].any() and not damage[:, 520:].any()


def test_the_opaque_part_of_a_mask_reaches_the_rim_of_a_loss_but_never_leaves_the_mask():
    """Rows 0-1 hide the picture; the mask holds every row: the opaque part grows
    OPAQUE_GROW rows into the rest of the mask (a loss's half-covered rim) and no further
    (opaque on less than LOSS_SHARE of it, the mask is no loss as a whole). A given mask
    says what is damaged, so the detector takes no second look: one call."""
    detector, calls = RedDetector(), []
    detector.register_forward_hook(lambda *_: calls.append(1))
    restorer = restorer_with(detector)
    image = picture_with_marks(0.1)
    image[1, :2] = 250
    mask = torch.zeros(96, 96, dtype=torch.bool)
    mask[:, 20:60] = True
    opaque = restorer.opaque(image, mask)
    assert opaque[:2 + OPAQUE_GROW, 20:60].all() and not opaque[2 + OPAQUE_GROW:].any()
    assert not (opaque & ~mask).any()
    assert (2 + OPAQUE_GROW) / 96 < LOSS_SHARE
    assert len(calls) == 1


def test_a_loss_is_opaque_to_its_middle_where_the_detector_sees_only_its_rim():
    """On a scan larger than it learnt, the detector calls a loss's rim opaque and not its
    flat middle: each part of the mask opaque on LOSS_SHARE of it is opaque whole; the
    other parts stay as found."""
    restorer = restorer_with(RedDetector())
    image = picture_with_marks(0.0)
    image[0, 10:40, 10:40] = image[1, 10:14, 10:40] = 250  # a loss, its top rim opaque
    image[0, 60:90, 60:90] = image[1, 60, 60] = 250  # a stain with one opaque speck
    image[0, 80:88, 10:18] = image[1, 80, 10] = 250  # a small one: the speck grown would
    mask = torch.zeros(96, 96, dtype=torch.bool)  # be 9 of its 64 px, over LOSS_SHARE
    mask[10:40, 10:40] = mask[60:90, 60:90] = mask[80:88, 10:18] = True
    opaque = restorer.opaque(image, mask)
    assert opaque[10:40, 10:40].all()
    assert opaque[60:90, 60:90].sum() == (1 + OPAQUE_GROW) ** 2  # the speck, grown
    assert opaque[80:88, 10:18].sum() == (1 + OPAQUE_GROW) ** 2
    assert (1 + OPAQUE_GROW) ** 2 / 64 > LOSS_SHARE


def test_automatic_restore_takes_a_loss_opaque_whole_too():
    restorer = restorer_with(RedDetector())
    image = picture_with_marks(0.0)
    image[0, 10:40, 10:40] = image[2, 10:40, 10:40] = 250  # a loss the detector is sure of,
    image[1, 10:14, 10:40] = 250  # opaque on its top rim
    finding = restorer.find(image)
    assert finding.mask[10:40, 10:40].all() and finding.opaque[10:40, 10:40].all()
    assert not (finding.opaque & ~finding.mask).any()


def test_opaque_damage_is_marked_by_the_synthesiser():
    images = torch.rand(4, 3, 64, 64)
    damaged, mask = damage.synthesize(images, kinds=["holes"], level="large", seed=0)
    _, _, opaque = damage.random_damage(images, torch.Generator().manual_seed(1), clean=0.0)
    assert mask.any() and (opaque <= 1).all()
    layers = damage.stains(damage._Draw(torch.Generator().manual_seed(0), images.device),
                           images, torch.full((4,), 0.5), torch.ones(4, dtype=torch.bool))
    assert damage._composite(images, layers)[2].sum() == 0  # stains never hide the picture
    layers = damage.holes(damage._Draw(torch.Generator().manual_seed(0), images.device),
                          images, torch.full((4,), 0.5), torch.ones(4, dtype=torch.bool))
    _, holes, opaque = damage._composite(images, layers)
    assert torch.equal(holes, opaque)


@pytest.mark.parametrize("kind", ["dust", "creases", "silvering"])
def test_old_photo_damage_changes_only_its_mask(kind):
    images = torch.rand(2, 3, 96, 96) * 0.5  # dark enough for silvering to show
    damaged, mask = damage.synthesize(images, kinds=[kind], level="large", seed=2)
    assert mask.any()
    assert torch.equal(damaged * (1 - mask), images * (1 - mask))


def test_clean_looks_are_seeded_and_stay_pictures():
    images = torch.rand(4, 3, 64, 64)
    first = clean_looks(images, torch.Generator().manual_seed(5))
    again = clean_looks(images, torch.Generator().manual_seed(5))
    assert torch.equal(first, again) and first.shape == images.shape
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    assert not torch.equal(first, images)


def test_facades_are_a_grid_of_windows_in_a_box():
    images = torch.full((3, 3, 96, 128), 0.5)
    out = facades(damage._Draw(torch.Generator().manual_seed(4), images.device), images,
                  share=1.0)
    for changed in (out - images).abs().amax(dim=1) > 0.02:
        ys, xs = changed.nonzero(as_tuple=True)
        assert len(ys)
        # windows, not one block: wall left between them within the façade's bounds
        facade = changed[int(ys.min()):int(ys.max()) + 1, int(xs.min()):int(xs.max()) + 1]
        assert 0.1 < float(facade.float().mean()) < 0.9
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    kept = facades(damage._Draw(torch.Generator().manual_seed(4), images.device), images,
                   share=0.0)
    assert torch.equal(kept, images)


def test_rims_are_bright_arcs_along_the_edge_of_a_round_object():
    images = torch.full((6, 3, 128, 128), 0.5)
    out = rims(damage._Draw(torch.Generator().manual_seed(5), images.device), images, share=1.0)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    # the object: its shaded, mottled body differs from the flat grey almost everywhere
    changed = (out - images).abs().amax(dim=1, keepdim=True) > 1e-6
    # the body is at most 0.5 * (1 + 0.3 + 0.06) bright: brighter is the highlight
    bright = out.mean(dim=1, keepdim=True) > 0.72
    assert bright.any(dim=(1, 2, 3)).sum() >= 4
    # the object eroded by 12 px (outside the picture counting as outside it): its inner
    # part, which no highlight reaches
    inner = -F.max_pool2d(-changed.float(), 25, stride=1, padding=12) > 0.5
    assert inner.any() and not (bright & inner).any()
    # a highlight blooms at most a little past the edge: by 3 px, none is outside
    near = F.max_pool2d(changed.float(), 7, stride=1, padding=3) > 0
    assert (bright <= near).all()
    kept = rims(damage._Draw(torch.Generator().manual_seed(5), images.device), images, share=0.0)
    assert torch.equal(kept, images)


def test_doubled_pictures_keep_no_detail_finer_than_two_pixels():
    checkerboard = (torch.arange(64).view(1, -1) + torch.arange(64).view(-1, 1)) % 2
    images = checkerboard.float().expand(6, 3, 64, 64)
    out = doubled(damage._Draw(torch.Generator().manual_seed(3), images.device), images, share=1.0)
    assert out.shape == images.shape
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-5)
    kept = doubled(damage._Draw(torch.Generator().manual_seed(3), images.device), images, share=0.0)
    assert torch.equal(kept, images)


# --- the command line --------------------------------------------------------------------




def test_cli_refuses_a_detection_of_everything_and_writes_nothing(restore_cli, tmp_path):
    model = str(save_tiny(tmp_path / "all.safetensors", detect="all"))
    path = tmp_path / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 80, 3), np.uint8)).save(path)
    code, err = restore_cli("restore", str(path), "--model", model, "--device", "cpu")
    assert code == 1 and f"more than the {MAX_CERTAIN_SHARE:.0%} artgan repaints unasked" in err
    assert "--detect-only" in err and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.safetensors", "scan.png"]
    code, err = restore_cli("restore", str(path), "--model", model, "--device", "cpu",
                       "--threshold", "0.5", "--detect-only")
    assert code == 0 and f"more than the {MAX_CERTAIN_SHARE:.0%}" in err


def test_cli_names_a_picture_too_small(restore_cli, tmp_path):
    model = str(save_tiny(tmp_path / "none.safetensors", detect="none"))
    path = tmp_path / "tiny.png"
    Image.new("RGB", (8, 8)).save(path)
    code, err = restore_cli("restore", str(path), "--model", model, "--device", "cpu")
    assert code == 1
    assert err.strip() == (f"error: {path}: the picture is 8x8 px; restore needs at least "
                           "16 px on each side")


def test_an_unknown_option_is_one_clear_error(tmp_path):
    model = save_tiny(tmp_path / "none.safetensors", detect="none")
    with pytest.raises(ArtganError, match="unknown restore option.s.: bogus"):
        artgan.restore(np.zeros((32, 32, 3), np.uint8), model=str(model), bogus=1)


def test_an_output_file_is_written_even_with_nothing_to_restore(restore_cli, tmp_path):
    model = str(save_tiny(tmp_path / "none.safetensors", detect="none"))
    path = tmp_path / "scan.png"
    pixels = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    code, err = restore_cli("restore", str(path), "--model", model, "--device", "cpu",
                       "-o", str(tmp_path / "out.png"))
    assert code == 0 and "an unchanged copy written to" in err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)


def test_detect_only_into_a_folder_names_masks_as_masks(restore_cli, tmp_path):
    model = str(save_tiny(tmp_path / "none.safetensors", detect="none"))
    path = tmp_path / "scan.jpg"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(path)
    code, err = restore_cli("restore", str(path), "--model", model, "--device", "cpu",
                       "--detect-only", "-o", str(tmp_path / "masks"))
    assert code == 0, err
    assert [p.name for p in (tmp_path / "masks").iterdir()] == ["scan.mask.png"]


def test_keep_connected_keeps_whole_detections_with_a_sure_part():
    from artgan_restore.detector import keep_connected

    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[5, 2:60] = True  # a long scratch, sure only at one end
    mask[40:44, 40:44] = True  # a blob nowhere sure
    seeds = torch.zeros_like(mask)
    seeds[5, 58] = True
    kept = keep_connected(mask, seeds)
    assert torch.equal(kept[5], mask[5]) and not kept[40:44].any()
    assert not keep_connected(mask, torch.zeros_like(mask)).any()


def test_logits_within_a_mask_run_only_the_tiles_it_needs_and_match_the_whole_pictures():
    torch.manual_seed(0)
    detector = DamageDetector(width=4, depth=2, opacity=True).eval()
    with torch.no_grad():
        detector.head[0].weight.normal_(std=0.5)  # doubtful here and there: second looks run
    calls = []
    detector.register_forward_hook(lambda *_: calls.append(1))
    height, width = 1101, 1103  # odd: the shrunk levels round their sides up
    picture = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)

    def logits(within=None, levels=True):
        out = torch.zeros(2, height, width)
        run = pyramid_logits if levels else tiled_logits
        for (rows, cols), core in run(detector, picture, 256, 16, within=within):
            out[:, rows, cols] = core
        return out

    whole = logits()
    full_calls, calls[:] = len(calls), []
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[600:650, 700:720] = True
    mask[1024:1026, 1024:1026] = True  # enlarging reads rows 255 and 256 of the 4x level:
    mask[-1, 5:9] = mask[5:9, -1] = True  # two of its tiles; and the rounded-up last rows
    part = logits(mask)
    assert len(calls) < full_calls / 2
    assert whole[0][mask].unique().numel() > 100  # logits that differ from pixel to pixel
    assert not torch.equal(whole[:, mask], logits(levels=False)[:, mask])  # levels win some
    assert torch.equal(part[:, mask], whole[:, mask])
    maps = detect_maps(detector, picture, tile=256, margin=16, within=mask)
    assert torch.equal(maps.hides[mask], whole[1][mask] > 0)
