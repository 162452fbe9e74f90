"""``artgan train restore``: a tiny run on the shared Trainer writes a loadable model."""

import numpy as np
import pytest
import torch
from artgan_restore.damage import VISIBLE_CHANGE, random_damage
from artgan_restore.model import ARCHITECTURE, DEFAULT_CONFIG, build
from artgan_restore.task import RestoreTask
from artgan_restore.training import (
    RestoreModule,
    _defaults,
    damaged_inputs,
    dice_loss,
    enlarged_damage,
    training_data,
)
from artgan_restore.validation import DetectorValidation
from PIL import Image
from test_restore import TINY, save_tiny

from artgan import store
from artgan.cli import task_command
from artgan.errors import ArtganError
from artgan.train import checkpoint


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "paintings"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            data / f"p{i}.png")
    return data


def test_tiny_training_run_writes_a_loadable_model(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "tiny.safetensors"
    command = task_command(RestoreTask(), "train")
    command.main([
        "--data", str(folder), "--holdout", "2", "--size", "32", "--load-size", "40",
        "--detector-steps", "2", "--steps", "2",
        "--batch-size", "2", "--width", "4", "--blocks", "1", "--detector-width", "4",
        "--detector-depth", "2", "--device", "cpu", "--precision", "fp32",
        "--out", str(target), "--data-license", "public domain",
    ], standalone_mode=False)
    loaded = store.load_model(target, "restore")
    assert loaded.info.card["steps"] == 2 and "last 2 of each held out" in loaded.info.card["data"]
    assert loaded.info.card["data_license"] == "public domain"
    assert loaded.info.card["load_size"] == 40 and loaded.info.card["detector_steps"] == 2
    assert set(loaded.network) == {"detector", "inpainter"} and loaded.config["size"] == 32
    assert (tmp_path / "runs" / "restore" / "restore" / "samples").is_dir()  # runs/TASK/NAME
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    assert loaded.network["inpainter"](image, mask).shape == image.shape


def assert_kept(start, target, network="inpainter"):
    """``network`` of model file ``target`` is that of ``start`` (exported in fp16)."""
    before = store.load_model(start, "restore").network[network].state_dict()
    after = store.load_model(target, "restore").network[network].state_dict()
    for key, value in before.items():
        expected = value.half().float() if value.is_floating_point() else value
        torch.testing.assert_close(after[key], expected, rtol=1e-3, atol=1e-5, msg=key)


def fine_tune(folder, tmp_path, name, *options):
    """Fine-tune a tiny saved model on ``folder`` with ``options``; returns (start, target)."""
    start = save_tiny(tmp_path / "start.safetensors")
    target = tmp_path / f"{name}.safetensors"
    task_command(RestoreTask(), "train").main([
        "--data", str(folder), "--init", str(start), "--load-size", "64",
        "--batch-size", "2", "--device", "cpu", "--precision", "fp32", "--out", str(target),
        *options,
    ], standalone_mode=False)
    return start, target


def test_detector_only_fine_tuning_keeps_the_inpainter_and_picks_the_best_step(
        folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start, target = fine_tune(folder, tmp_path, "tuned", "--only", "detector", "--holdout", "1",
                              "--validate", "2", "--validate-every", "1", "--steps", "2")
    card = store.read_header(target)["card"]
    assert card["trained"] == "detector only" and card["init"] == str(start)
    # 1 - F1 in [0, 1], plus the weighted share marked on the clean pictures
    assert card["selected_step"] in (0, 1, 2)
    assert 0 <= card["validation_score"] <= 1 + DetectorValidation.CLEAN_WEIGHT
    assert "2 held-out images" in card["validation"]
    before = store.load_model(start, "restore").network
    assert_kept(start, target)
    log = (tmp_path / "runs" / "restore" / "restore" / "log.jsonl").read_text()
    assert log.count('"validation"') == 3
    trained = checkpoint.load(tmp_path / "runs" / "restore" / "restore" / "checkpoints")
    start_detector = before["detector"].state_dict()
    assert any(not torch.equal(value.float(), start_detector[key].float())
               for key, value in trained["networks"]["detector"].items()), "detector unchanged"


def _norm_statistics(state):
    return {key: value.float() for key, value in state.items()
            if key.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize("network", ["detector", "inpainter"])
def test_fine_tuning_one_network_keeps_its_batch_norm_statistics(folder, tmp_path,
                                                                 monkeypatch, network):
    """Updated from small batches, the statistics drift and worsen a fine-tune; a network
    that starts from the model's weights keeps them (its scales and shifts still learn)."""
    monkeypatch.chdir(tmp_path)
    start, _ = fine_tune(folder, tmp_path, "tuned", "--only", network, "--steps", "2")
    trained = checkpoint.load(tmp_path / "runs" / "restore" / "restore" / "checkpoints")
    before = store.load_model(start, "restore").network[network].state_dict()
    after = trained["networks"][network]
    kept = _norm_statistics(after)
    assert kept and all(torch.equal(value, before[key].float()) for key, value in kept.items())
    assert any(not torch.equal(after[key].float(), before[key].float())
               for key in after if key.endswith(".weight") and key not in kept)


def test_detector_only_with_another_detector_shape_trains_a_new_detector(
        folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start, target = fine_tune(folder, tmp_path, "wider", "--only", "detector",
                              "--detector-width", "6", "--steps", "1")
    before = store.load_model(start, "restore")
    after = store.load_model(target, "restore")
    # a model from before opacity outputs keeps none unless asked (--detector-opacity)
    assert after.config["detector"] == {"opacity": False, **before.config["detector"], "width": 6}
    assert after.config["inpainter"] == before.config["inpainter"]
    assert after.info.card["trained"] == "new detector only"
    assert after.network["detector"].stem[1][0].out_channels == 6
    assert_kept(start, target)
    # a new detector learns its batch-norm statistics
    trained = checkpoint.load(tmp_path / "runs" / "restore" / "restore" / "checkpoints")
    fresh = _norm_statistics(trained["networks"]["detector"])
    assert any(not torch.equal(value, torch.zeros_like(value)) for key, value in fresh.items()
               if key.endswith("running_mean"))


def test_inpainter_only_fine_tuning_keeps_the_detector_and_validates_by_psnr(
        folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start, target = fine_tune(folder, tmp_path, "tuned", "--only", "inpainter",
                              "--texture-weight", "0.5", "--holdout", "1", "--validate", "1",
                              "--validate-every", "1", "--steps", "2")
    card = store.read_header(target)["card"]
    assert card["trained"] == "inpainter only" and card["texture_weight"] == 0.5
    assert "PSNR" in card["validation"] and card["validation_score"] < 0  # minus dB
    assert card["selected_step"] in (0, 1, 2)
    log = (tmp_path / "runs" / "restore" / "restore" / "log.jsonl").read_text()
    assert log.count('"validation"') == 3
    assert_kept(start, target, "detector")
    trained = checkpoint.load(tmp_path / "runs" / "restore" / "restore" / "checkpoints")
    start_inpainter = store.load_model(start, "restore").network["inpainter"].state_dict()
    assert any(not torch.equal(value.float(), start_inpainter[key].float())
               for key, value in trained["networks"]["inpainter"].items()), "inpainter unchanged"


def test_texture_weight_zero_trains_no_discriminator(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fine_tune(folder, tmp_path, "tuned", "--only", "inpainter", "--texture-weight", "0",
              "--steps", "2")
    trained = checkpoint.load(tmp_path / "runs" / "restore" / "restore" / "checkpoints")
    assert trained["optimizers"]["discriminator"]["state"] == {}, "discriminator stepped"
    assert trained["optimizers"]["inpainter"]["state"], "inpainter never stepped"
    log = (tmp_path / "runs" / "restore" / "restore" / "log.jsonl").read_text()
    assert '"l1_hole"' in log and '"g_adv"' not in log and '"d"' not in log


@pytest.mark.parametrize("options, message", [
    (["--only", "detector"], "needs --init"),
    (["--only", "inpainter", "--validate", "1", "--validate-every", "1"], "needs --init"),
    (["--validate", "1"], "go together"),
    (["--validate", "1", "--validate-every", "1"], "go together"),
    (["--init", "START", "--size", "64", "--width", "8"], "--width 8: --init"),
    (["--init", "START", "--size", "64", "--detector-width", "6"], "--detector-width 6: --init"),
    (["--init", "START", "--size", "64", "--only", "inpainter", "--detector-width", "6"],
     "--detector-width 6: --init"),
    # an option given at its default value is given: never silently the model's instead
    (["--init", "START", "--size", "64", "--width", "24"], "--width 24: --init"),
    (["--init", "START", "--size", "256", "--only", "detector"], "--size 256: --init"),
])
def test_fine_tuning_option_mistakes(folder, tmp_path, options, message):
    start = str(save_tiny(tmp_path / "start.safetensors"))
    options = [start if option == "START" else option for option in options]
    with pytest.raises(ArtganError, match=message):
        task_command(RestoreTask(), "train").main([
            "--data", str(folder), "--steps", "1", "--size", "32", "--detector-depth", "2",
            "--device", "cpu", "--out", str(tmp_path / "x.safetensors"), *options,
        ], standalone_mode=False)


def test_a_new_models_shape_options_left_out_take_the_defaults():
    left_out = {"detector": {"width": None, "depth": None, "opacity": None},
                "inpainter": {"width": None, "blocks": None}, "size": None}
    assert _defaults(left_out) == DEFAULT_CONFIG
    given = _defaults({**left_out, "size": 64, "inpainter": {"width": 8, "blocks": None}})
    assert given["size"] == 64 and given["inpainter"] == {**DEFAULT_CONFIG["inpainter"],
                                                          "width": 8}
    assert given["detector"] == DEFAULT_CONFIG["detector"]


def test_holdout_leaves_out_the_last_images(folder):
    dataset, validation = training_data([str(folder)], 32, holdout=2, validate=1)
    assert len(dataset) == 3 and [p.name for p in validation] == ["p3.png"]
    with pytest.raises(ArtganError, match="none left"):
        training_data([str(folder)], 32, holdout=6)


def test_hard_negatives_are_trained_on_whole_and_never_validated(folder, tmp_path):
    mined = tmp_path / "mined"
    mined.mkdir()
    for i in range(3):
        Image.new("RGB", (40, 40), (i, 0, 0)).save(mined / f"{i:05d}_photo_x.png")
    dataset, validation = training_data([str(folder)], 32, holdout=2, validate=1,
                                        hard_negatives=(str(mined), str(mined)))
    assert len(dataset) == 3 + 2 * 3  # repeated: drawn twice as often
    assert [p.name for p in validation] == ["p3.png"]


def test_hard_negatives_need_the_detector_to_train(folder, tmp_path):
    with pytest.raises(ArtganError, match="--hard-negatives trains the detector"):
        fine_tune(folder, tmp_path, "bad", "--only", "inpainter", "--hard-negatives",
                  str(folder), "--steps", "1")


def test_enlarged_damage_enlarges_picture_and_damage_together():
    y, x = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    images = ((x + y) % 7 / 7.0).expand(4, 3, -1, -1).clone()  # detail a shrink would blur
    drawn = {}
    for name, make in (("plain", lambda g: random_damage(images, g, clean=0.0, levels=1.0)),
                       ("enlarged", lambda g: enlarged_damage(images, g, 0.0, 1.0))):
        damaged, mask, opaque = make(torch.Generator().manual_seed(5))
        assert damaged.shape == images.shape and mask.shape == (4, 1, 128, 128)
        if name == "plain":  # enlarged: outside the mask, the enlarged crop (checked below)
            assert torch.equal(damaged * (1 - mask), images * (1 - mask))
        assert not (opaque > mask).any() and set(mask.unique().tolist()) <= {0.0, 1.0}
        drawn[name] = float(mask.mean())
    assert drawn["enlarged"] > drawn["plain"] > 0
    flat = torch.full((8, 3, 64, 64), 0.5)
    damaged, mask, _ = enlarged_damage(flat, torch.Generator().manual_seed(1), 0.0, 1.0)
    change = (damaged - flat).abs().amax(dim=1, keepdim=True)
    assert mask.any() and torch.equal(mask > 0, change >= VISIBLE_CHANGE)  # the soft rim too
    clean, mask, _ = enlarged_damage(images, torch.Generator().manual_seed(5), 1.0, 1.0)
    assert not mask.any()
    # the whole picture is enlarged, so its 7 px stripes come out soft everywhere
    def steepest(x):
        return (x[..., 1:] - x[..., :-1]).abs().amax(dim=(1, 2, 3))

    assert bool((steepest(clean) < 0.8).all()) and bool((steepest(images) > 0.8).all())


def test_enlarged_damage_trains_the_detector_only(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, target = fine_tune(folder, tmp_path, "large", "--only", "detector",
                          "--enlarged-damage", "1", "--steps", "2")
    assert store.find_model(str(target), "restore").card["enlarged_damage"] == 1.0
    with pytest.raises(ArtganError, match="--enlarged-damage trains the detector"):
        fine_tune(folder, tmp_path, "bad", "--only", "inpainter", "--enlarged-damage", "0.5",
                  "--steps", "1")


def test_dice_loss_rewards_overlap_and_empty_predictions_on_clean_images():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:4, 2:4] = 1
    good, bad = target * 40 - 20, -target * 40 + 20
    assert dice_loss(good, target) < 0.05 < 0.9 < dice_loss(bad, target)
    assert dice_loss(torch.full((1, 1, 8, 8), -20.0), torch.zeros(1, 1, 8, 8)) < 0.01


def test_inpainter_inputs_hide_half_the_holes_and_damage_the_rest():
    images = torch.rand(4, 3, 48, 48)
    damaged, masks = damaged_inputs(images, torch.Generator().manual_seed(0))
    assert damaged.shape == images.shape and masks.shape == (4, 1, 48, 48)
    outside = masks.expand_as(images) == 0
    assert torch.equal(damaged[outside], images[outside]), "only masked pixels change"
    assert bool(masks.flatten(1).any(dim=1).all()), "every picture has something to repair"
    for hidden, hole in zip(damaged[:2], masks[:2], strict=True):  # one flat colour per hole
        inside = hidden[:, hole[0] > 0]
        assert torch.allclose(inside, inside[:, :1].expand_as(inside))


def test_detector_only_samples_map_found_and_true_damage():
    config = {"detector": {"width": 4, "depth": 2},
              "inpainter": {"width": 4, "downs": 2, "blocks": 1, "global_ratio": 0.5}, "size": 32}
    module = RestoreModule(config, only="detector")
    networks = module.networks()
    fixed = module.fixed_inputs(torch.rand(4, 3, 32, 32) * 2 - 1)
    grid = (module.sample(networks, fixed) + 1) / 2
    assert grid.shape == (8, 3, 32, 32)
    torch.testing.assert_close(grid[4:, 1:2], fixed["masks"])  # green: the true damage
    assert (grid[4:, 2] == 0).all() and fixed["masks"].any()


def test_a_shallower_detector_starts_from_the_upper_levels_of_the_init_model():
    init = build(**TINY).state_dict()
    config = {**TINY, "detector": {**TINY["detector"], "depth": 1}}
    networks = RestoreModule(config, init=init, only="detector").networks()
    detector = networks["detector"].state_dict()
    assert len(detector) < sum(key.startswith("detector.") for key in init)
    for key, value in detector.items():  # every level it keeps, and the head
        torch.testing.assert_close(value, init[f"detector.{key}"], msg=key)
    for key, value in networks["inpainter"].state_dict().items():
        torch.testing.assert_close(value, init[f"inpainter.{key}"], msg=key)


def test_detector_only_can_give_an_old_detector_an_opacity_output(folder, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    start, target = fine_tune(folder, tmp_path, "opaque", "--only", "detector",
                              "--detector-opacity", "--steps", "1")
    before = store.load_model(start, "restore")
    after = store.load_model(target, "restore")
    assert after.config["detector"]["opacity"] is True
    assert after.network["detector"].outputs == 2
    old_head = before.network["detector"].head[0].weight
    # the damage output starts where the old one was (then takes one update)
    assert after.network["detector"].head[0].weight.shape[0] == 2 * old_head.shape[0]
    assert_kept(start, target)
    with pytest.raises(ArtganError, match="changing it needs --only detector or --only opacity"):
        fine_tune(folder, tmp_path, "bad", "--only", "inpainter", "--detector-opacity",
                  "--steps", "1")


def test_opacity_only_keeps_the_damage_output_exactly(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start, target = fine_tune(folder, tmp_path, "opacity", "--only", "opacity", "--steps", "2")
    before = store.load_model(start, "restore").network
    after = store.load_model(target, "restore").network
    assert after["detector"].outputs == 2
    old, new = before.state_dict(), after.state_dict()
    for key, value in old.items():  # as stored: the export is in fp16
        stored = value.half().to(value.dtype) if value.is_floating_point() else value
        if key.startswith("detector.head"):  # the damage rows of the head: unchanged
            assert torch.equal(new[key][: value.shape[0]], stored), key
        else:
            assert torch.equal(new[key], stored), key
    assert store.read_header(target)["card"]["trained"] == "opacity output only"


@pytest.mark.parametrize("network", ["detector", "inpainter"])
def test_a_fine_tune_keeps_its_init_models_calibrated_thresholds(folder, tmp_path, monkeypatch,
                                                                 network):
    monkeypatch.chdir(tmp_path)
    start = save_tiny(tmp_path / "start.safetensors")
    loaded = store.load_model(start, "restore")
    store.save_model(loaded.network, start, task="restore", architecture=ARCHITECTURE,
                     config=loaded.config, card={"threshold": 0.2, "sure": 0.6})
    target = tmp_path / "tuned.safetensors"
    task_command(RestoreTask(), "train").main([
        "--data", str(folder), "--init", str(start), "--load-size", "64", "--batch-size", "2",
        "--device", "cpu", "--precision", "fp32", "--out", str(target), "--only", network,
        "--steps", "1"], standalone_mode=False)
    card = store.read_header(target)["card"]
    assert (card["threshold"], card["sure"]) == (0.2, 0.6)
    assert card["thresholds"].startswith(f"from --init {start}")
    assert ("not recalibrated" in card["thresholds"]) == (network == "detector")
