"""CUT and FastCUT (``--method cut|fastcut``): PatchNCE, the encoder's layers, tiny training
runs writing one-way models, and what a one-way model refuses."""

import json

import pytest
import torch
from artgan_style_transfer import TASK, cut
from artgan_style_transfer.contrastive import (
    VARIANTS,
    CUTModule,
    ProjectionHeads,
    encode,
    encoder_layers,
    layer_channels,
    patch_nce,
    recording,
)
from PIL import Image
from safetensors import safe_open
from test_style_transfer import TINY, _pictures, _save_tiny

from artgan import store
from artgan.cli import task_command
from artgan.errors import ArtganError
from artgan.nn.blocks import ResnetGenerator
from artgan.train import checkpoint


def test_encoder_layers_are_the_picture_stem_downsamplings_and_middle_block():
    generator = ResnetGenerator(width=4, n_blocks=6, n_down=2)
    layers = encoder_layers(generator)
    assert layers == [-1, 3, 7, 11, 15]  # as the paper's 0, 4, 8, 12, 16 of 9 blocks
    features = encode(generator, torch.rand(1, 3, 32, 32), layers)
    assert [f.shape[1:] for f in features] == [(3, 32, 32), (4, 32, 32), (8, 16, 16),
                                              (16, 8, 8), (16, 8, 8)]
    assert layer_channels(generator, layers) == [3, 4, 8, 16, 16]


def test_the_forward_pass_records_the_features_encode_makes():
    generator = ResnetGenerator(width=4, n_blocks=4, n_down=2)
    layers = encoder_layers(generator)
    picture = torch.rand(2, 3, 32, 32)
    with recording(generator, layers) as recorded:
        out = generator(picture)
    assert torch.equal(out, generator(picture))  # recording changes nothing
    expected = encode(generator, picture, layers)[1:]  # all but the picture itself
    assert len(recorded) == len(expected)
    assert all(torch.allclose(a, b) for a, b in zip(recorded, expected, strict=True))
    generator(picture)
    assert len(recorded) == len(expected)  # nothing recorded once the context is closed


def test_patch_nce_is_low_where_each_patch_finds_itself():
    torch.manual_seed(0)
    keys = [torch.nn.functional.normalize(torch.randn(2, 64, 16), dim=-1)]
    matching = patch_nce(keys, keys)
    shuffled = patch_nce([keys[0][:, torch.randperm(64)]], keys)
    assert matching < 0.1 < shuffled


def test_projection_heads_give_unit_vectors_at_the_sampled_places():
    heads = ProjectionHeads([3, 8], width=5)
    features = [torch.rand(2, 3, 4, 4), torch.rand(2, 8, 2, 2)]
    out = heads(features, [torch.tensor([0, 5, 15]), torch.tensor([1, 3])])
    assert [o.shape for o in out] == [(2, 3, 5), (2, 2, 5)]
    assert torch.allclose(out[0].norm(dim=-1), torch.ones(2, 3))


def test_variants_follow_the_paper():
    assert VARIANTS["cut"]["nce_identity"] and not VARIANTS["fastcut"]["nce_identity"]
    assert VARIANTS["fastcut"]["nce_weight"] == 10 and VARIANTS["fastcut"]["flip_equivariance"]
    module = CUTModule(TINY, method="fastcut", nce_weight=3.0)
    assert module.nce_weight == 3.0


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_tiny_cut_run_writes_a_one_way_model(tmp_path, method):
    photos, paintings = _pictures(tmp_path / "a", 6), _pictures(tmp_path / "b", 5, seed=1)
    out = tmp_path / f"{method}.safetensors"
    task_command(TASK, "train").main([
        "--method", method, "--domain-a", str(photos), "--domain-b", str(paintings),
        "--name", "tiny", "--size", "16", "--width", "4", "--blocks", "1", "--d-width", "4",
        "--d-layers", "2", "--d-padding", "reflect", "--batch-size", "2", "--steps", "3",
        "--holdout", "2", "--out", str(out), "--run-dir", str(tmp_path / "run"),
        "--device", "cpu", "--precision", "fp32",
    ], standalone_mode=False)
    info = store.read_header(out)
    assert info["architecture"] == "cut" and info["card"]["method"] == method
    assert info["card"]["summary"].startswith("a -> b " + {"cut": "CUT ", "fastcut": "FastCUT "}[
        method])
    with safe_open(str(out), "pt") as handle:
        assert all(key.startswith("a2b.") for key in handle.keys())
    assert TASK.load(str(out), device="cpu")(Image.new("RGB", (20, 16))).size == (20, 16)
    with pytest.raises(ArtganError, match="trained one way"):
        TASK.load(str(out), device="cpu", reverse=True)


def test_cut_fine_tunes_a_cyclegan_models_photo_to_painting_generator_and_keeps_the_other(
        tmp_path):
    photos, paintings = _pictures(tmp_path / "a", 4), _pictures(tmp_path / "b", 4, seed=1)
    start = _save_tiny(tmp_path / "start.safetensors", seed=5)
    out = tmp_path / "tuned.safetensors"
    TASK.train(method="fastcut", domain_a=str(photos), domain_b=str(paintings), name="x",
               size=16, init=str(start), d_width=4, d_layers=2, d_padding="reflect",
               steps=1, lr=1e-12, run_dir=tmp_path / "run", out=str(out), device="cpu",
               precision="fp32")
    before = store.load_model(start, "style-transfer").network
    tuned = store.load_model(out, "style-transfer")
    # one way trained, the other kept: still a two-way model, so --reverse still works
    assert tuned.info.metadata["architecture"] == "cyclegan"
    for direction in ("a2b", "b2a"):
        after = tuned.network[direction].state_dict()
        for key, value in before[direction].state_dict().items():
            torch.testing.assert_close(after[key], value.half().float(), rtol=1e-3, atol=1e-4)
    assert TASK.load(str(out), device="cpu", reverse=True)(Image.new("RGB", (16, 16))).size \
        == (16, 16)
    # with the blur switched on the kept generator would compute something else: one way
    blurred = tmp_path / "blurred.safetensors"
    TASK.train(method="fastcut", domain_a=str(photos), domain_b=str(paintings), name="z",
               size=16, init=str(start), antialias=True, d_width=4, d_layers=2,
               d_padding="reflect", steps=1, run_dir=tmp_path / "run3", out=str(blurred),
               device="cpu", precision="fp32")
    assert store.read_header(blurred)["architecture"] == "cut"
    # a one-way model cannot start a CycleGAN, which needs both directions
    with pytest.raises(ArtganError, match="trained one way"):
        TASK.train(method="cyclegan", domain_a=str(photos), domain_b=str(paintings), name="y",
                   size=16, init=str(blurred), d_width=4, d_layers=2, d_padding="reflect",
                   steps=1, run_dir=tmp_path / "run2", out=str(tmp_path / "y.safetensors"),
                   device="cpu")


def test_a_cut_model_builds_from_its_config():
    assert list(cut(**TINY)) == ["a2b"]


def test_a_cut_model_exports_its_one_generator(tmp_path):
    from artgan.export import export_networks

    path = store.save_model(cut(**TINY, antialias=True), tmp_path / "c.safetensors",
                            task="style-transfer", architecture="cut",
                            config={**TINY, "antialias": True})
    _, networks = export_networks("style-transfer", str(path))
    assert [network.name for network in networks] == ["a2b"]


@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_artefact_weight_adds_the_mesh_penalty_to_the_generator_loss(tmp_path, method):
    photos, paintings = _pictures(tmp_path / "a", 3), _pictures(tmp_path / "b", 3, seed=1)
    TASK.train(method=method, domain_a=str(photos), domain_b=str(paintings), name="x",
               size=64, width=4, blocks=1, d_width=4, d_layers=2, artefact_weight=2.0,
               steps=2, run_dir=tmp_path / "run", out=str(tmp_path / "x.safetensors"),
               device="cpu", precision="fp32")
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    # logged with the generator's losses; 0 where the outputs score under their photos
    assert logged and all(0 <= entry["artefacts"] < 2 for entry in logged)
    with pytest.raises(ArtganError, match="--artefact-weight needs crops of at least 64 px"):
        TASK.train(method=method, domain_a=str(photos), domain_b=str(paintings), name="y",
                   size=32, width=4, blocks=1, d_width=4, d_layers=2, d_padding="reflect",
                   artefact_weight=2.0,
                   steps=1, run_dir=tmp_path / "run2", out=str(tmp_path / "y.safetensors"),
                   device="cpu")


@pytest.mark.parametrize("method", ["cyclegan", "cut"])
def test_d_warmup_trains_only_the_discriminators_first(tmp_path, method):
    photos, paintings = _pictures(tmp_path / "a", 4), _pictures(tmp_path / "b", 4, seed=1)
    start = _save_tiny(tmp_path / "start.safetensors", seed=5)
    out = tmp_path / "warm.safetensors"
    TASK.train(method=method, domain_a=str(photos), domain_b=str(paintings), name="x",
               size=16, init=str(start), d_width=4, d_layers=2, d_padding="reflect",
               steps=2, d_warmup=2, lr=1e-2, run_dir=tmp_path / "run", out=str(out),
               device="cpu", precision="fp32")
    before = store.load_model(start, "style-transfer").network["a2b"].state_dict()
    after = store.load_model(out, "style-transfer").network["a2b"].state_dict()
    for key, value in before.items():  # at lr 1e-2 one generator step would show
        torch.testing.assert_close(after[key], value.half().float(), rtol=1e-3, atol=1e-4)
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    assert any("d_loss" in entry for entry in logged)
    assert not any("g_adv" in entry for entry in logged)


def test_anchor_weight_ties_a_cut_fine_tune_to_its_start(tmp_path):
    photos, paintings = _pictures(tmp_path / "a", 3), _pictures(tmp_path / "b", 3, seed=1)
    start = _save_tiny(tmp_path / "start.safetensors", seed=5)
    common = dict(domain_a=str(photos), domain_b=str(paintings), size=16, d_width=4,
                  d_layers=2, d_padding="reflect", device="cpu", precision="fp32")
    TASK.train(method="cut", name="x", init=str(start), anchor_weight=5.0, anchor_blur=1.5,
               steps=2, lr=1e-2, log_every=1, run_dir=tmp_path / "run",
               out=str(tmp_path / "x.safetensors"), **common)
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    anchors = [entry["anchor"] for entry in logged if "anchor" in entry]
    assert anchors[0] < 1e-6  # the first step's generator is the start itself
    assert anchors[-1] > 0  # and the next one has moved from it
    card = store.load_model(tmp_path / "x.safetensors", "style-transfer").info.card
    assert card["anchor_weight"] == 5.0 and card["anchor_blur"] == 1.5
    kept = checkpoint.load(tmp_path / "run" / "checkpoints")["module"]["anchor"]
    initial = store.load_model(start, "style-transfer").network.state_dict()
    assert all(torch.equal(value, initial[f"a2b.{name}"])
               for name, value in kept.items())  # the start, for a resume to go on from
    for settings in ({"method": "cut"}, {"method": "cyclegan", "init": str(start)}):
        with pytest.raises(ArtganError, match="--anchor-weight needs --init"):
            TASK.train(name="y", anchor_weight=1.0, steps=1, run_dir=tmp_path / "run2",
                       out=str(tmp_path / "y.safetensors"), **settings, **common)
