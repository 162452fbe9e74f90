"""The generate task: FastGAN networks, training through the real Trainer, sampling to files.

One tiny model (32 px, width 4) is trained for a few steps once per module through the
``artgan train generate`` command object, on synthetic pictures of mixed sizes and modes.
"""

import json
from pathlib import Path

import artgan_generate
import numpy as np
import pytest
import torch
from artgan_generate import TASK
from artgan_generate import task as generate_task
from artgan_generate.model import (
    SIZES,
    FastGANDiscriminator,
    FastGANGenerator,
    NoiseInjection,
    quarter_of,
    standing_stats,
)
from artgan_generate.sampling import CHUNK, GeneratorPipeline, latents, slerp, walk
from PIL import Image
from safetensors import safe_open

import artgan
from artgan import store
from artgan.cli import task_command
from artgan.errors import ArtganError, UnknownNameError
from artgan.nn.blocks import BlurDownConv, BlurUpsample
from artgan.train import checkpoint


def _paintings(folder: Path, count: int) -> Path:
    """Noisy colour fields of different sizes and modes (RGB, L, RGBA, P, 16-bit)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        height, width = 36 + 7 * i, 40 + 5 * (i % 3)
        base = rng.integers(0, 255, 3) * np.ones((height, width, 3))
        pixels = np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        kind = i % 5
        if kind == 1:
            image = image.convert("L")
        elif kind == 2:
            image = image.convert("RGBA")
        elif kind == 3:
            image = image.convert("P")
        elif kind == 4:
            image = Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257)
        image.save(folder / f"p{i:02d}.png")
    return folder


def _train(*args: str) -> None:
    task_command(TASK, "train").main(list(args), standalone_mode=False)


def _run(*args: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        task_command(TASK, "run").main(list(args), standalone_mode=False)
    assert exit_info.value.code == 0


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A tiny generator trained for 3 steps with the default output path."""
    root = tmp_path_factory.mktemp("train")
    data = _paintings(root / "data", 10)
    _train("--data", str(data), "--name", "tiny", "--size", "32", "--width", "4",
           "--batch-size", "4", "--steps", "3", "--run-dir", str(root / "run"),
           "--device", "cpu", "--precision", "fp32", "--data-license", "made by the test")
    return store.user_model_dir() / "generate" / "tiny.safetensors"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- networks -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_networks_shapes(size):
    generator, discriminator = FastGANGenerator(size, 2, 8), FastGANDiscriminator(size, 2)
    images = generator(torch.randn(2, 8))
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    logits, (whole, part, quarter) = discriminator(images, reconstruct=True)
    assert logits.shape == (2,)
    assert whole.shape[-1] == min(size, 128) and part.shape[-1] == min(size // 2, 128)
    assert quarter_of(images, quarter).shape[-1] == size // 2


def test_standing_stats_make_samples_independent_of_the_batch():
    generator = FastGANGenerator(32, 2, 8)
    standing_stats(generator, batches=2, batch_size=8)
    z = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(generator(z)[:1], generator(z[:1]), atol=1e-5)
    assert not generator.training


def test_slerp_walk_loops_through_the_keys():
    keys = latents(3, 0, 16)
    path = walk(keys, 6)
    assert path.shape == (6, 16)
    assert torch.allclose(path[0], keys[0], atol=1e-5)
    assert torch.allclose(path[2], keys[1], atol=1e-5)
    middle = slerp(keys[0], keys[1], 0.5)
    assert 0.8 < middle.norm() / keys[:2].norm(dim=1).mean() < 1.2


def test_latents_of_a_seed_do_not_depend_on_the_count():
    assert torch.equal(latents(2, 5, 8), latents(7, 5, 8)[:2])


def test_hooks_register_the_task_and_architecture():
    tasks, architectures = [], {}
    artgan_generate.register_tasks(tasks.append)
    artgan_generate.register_architectures(architectures.__setitem__)
    assert tasks == [TASK] and architectures == {"fastgan": FastGANGenerator}


# --- training -----------------------------------------------------------------------------


def test_training_writes_a_loadable_generator_with_a_card(model):
    loaded = store.load_model(model, "generate")
    assert isinstance(loaded.network, FastGANGenerator)
    assert loaded.config == {"size": 32, "width": 4, "latent_dim": 256}
    card = loaded.info.card
    assert card["steps"] == 3 and card["images"] == 10  # every mode and size was read
    assert card["data"].endswith("data") and card["hardware"] and card["train_seconds"] > 0
    assert card["augment"] == "color,translation" and card["ema_decay"] == 0.999
    assert card["data_license"] == "made by the test"
    with safe_open(str(model), "pt") as handle:  # the generator only
        assert all(not key.startswith(("discriminator", "decode")) for key in handle.keys())


def test_antialiased_training_writes_a_generator_that_blurs_every_upsampling(tmp_path):
    data = _paintings(tmp_path / "data", 6)
    out = tmp_path / "smooth.safetensors"
    _train("--data", str(data), "--name", "smooth", "--size", "32", "--width", "4",
           "--batch-size", "4", "--steps", "2", "--antialias", "--out", str(out),
           "--run-dir", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32",
           "--data-license", "made by the test")
    loaded = store.load_model(out, "generate")
    assert loaded.config == {"size": 32, "width": 4, "latent_dim": 256, "antialias": True}
    assert loaded.info.card["antialias"] is True
    ups = [m for m in loaded.network.modules() if isinstance(m, torch.nn.Upsample)]
    assert len(ups) == 3 and all(isinstance(m, BlurUpsample) for m in ups)


def test_antialiased_fastgan_has_the_plain_weights_and_blurs_every_downsampling():
    plain, smooth = FastGANGenerator(64, 4), FastGANGenerator(64, 4, antialias=True)
    smooth.load_state_dict(plain.state_dict())  # the blur adds no weights
    assert smooth.eval()(torch.randn(2, 256)).shape == (2, 3, 64, 64)
    critic = FastGANDiscriminator(64, 4, antialias=True)
    assert critic.state_dict().keys() == FastGANDiscriminator(64, 4).state_dict().keys()
    strided = [m for m in critic.modules()
               if isinstance(m, torch.nn.Conv2d) and m.stride[0] > 1]
    assert strided and all(isinstance(m, BlurDownConv) for m in strided)


def test_noise_varies_training_pictures_and_is_fixed_when_sampling():
    generator = FastGANGenerator(32, 4, noise=True)
    injections = [m for m in generator.modules() if isinstance(m, NoiseInjection)]
    assert len(injections) == 4  # two per double block: 8 and 32 px
    assert all(m.weight.item() == 0 for m in injections)  # FastGAN's start: no noise yet
    for m in injections:
        m.weight.data.fill_(1.0)
    z = torch.randn(2, 256)
    torch.manual_seed(0)
    trained = generator.train()(z)
    assert not torch.equal(trained, generator(z))  # fresh noise on every call
    standing_stats(generator, batches=1, batch_size=8)
    assert torch.equal(generator(z), generator(z))  # eval: the stored noise picture
    assert torch.allclose(generator(z[:1]), generator(z)[:1], atol=1e-5)  # no batch effect
    assert [m.fixed.shape[-1] for m in injections] == [8, 8, 32, 32]  # saved with the model
    assert not torch.equal(injections[0].fixed, injections[1].fixed)  # one per layer


def test_noisy_training_writes_a_model_that_samples_alike_on_every_backend(tmp_path):
    data = _paintings(tmp_path / "data", 6)
    out = tmp_path / "noisy.safetensors"
    _train("--data", str(data), "--name", "noisy", "--size", "32", "--width", "4",
           "--batch-size", "4", "--steps", "2", "--noise", "--out", str(out),
           "--run-dir", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32")
    loaded = store.load_model(out, "generate")
    assert loaded.config == {"size": 32, "width": 4, "latent_dim": 256, "noise": True}
    assert loaded.info.card["noise"] is True
    weights = [m.weight.item() for m in loaded.network.modules()
               if isinstance(m, NoiseInjection)]
    assert len(weights) == 4 and any(w != 0 for w in weights)  # learnt in two steps
    z = latents(3, 7, 256)
    ours = GeneratorPipeline(loaded.network, "cpu").process(z)
    assert torch.equal(ours, GeneratorPipeline(loaded.network, "cpu").process(z))
    pytest.importorskip("openvino")
    theirs = GeneratorPipeline(loaded.network, "cpu", backend="openvino").process(z)
    assert (ours - theirs).abs().mean() < 0.5 / 255 and (ours - theirs).abs().max() < 4 / 255
    with pytest.raises(ArtganError, match="--noise False: --init .* has noise True"):
        _train("--data", str(data), "--name", "quiet", "--init", str(out), "--no-noise",
               "--batch-size", "2", "--steps", "1", "--run-dir", str(tmp_path / "run2"))


def test_artefact_weight_trains_against_the_mesh_score_at_64_px_and_more(tmp_path):
    data = _paintings(tmp_path / "data", 4)
    out = tmp_path / "plain.safetensors"
    _train("--data", str(data), "--name", "plain", "--size", "64", "--width", "2",
           "--batch-size", "2", "--steps", "2", "--artefact-weight", "2", "--out", str(out),
           "--run-dir", str(tmp_path / "run"), "--device", "cpu", "--precision", "fp32")
    assert store.load_model(out, "generate").info.card["artefact_weight"] == 2
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    assert any(0 < entry.get("artefacts", -1) < 1 for entry in logged)
    with pytest.raises(ArtganError, match="at least 64 px"):
        _train("--data", str(data), "--name", "small", "--size", "32", "--width", "2",
               "--batch-size", "2", "--steps", "1", "--artefact-weight", "2",
               "--run-dir", str(tmp_path / "run2"))


def test_validated_training_exports_its_best_scoring_step(tmp_path):
    data = _paintings(tmp_path / "data", 6)
    out = tmp_path / "picked.safetensors"
    _train("--data", str(data), "--name", "picked", "--size", "64", "--width", "2",
           "--batch-size", "2", "--steps", "4", "--validate", "8", "--validate-every", "2",
           "--out", str(out), "--run-dir", str(tmp_path / "run"), "--device", "cpu",
           "--precision", "fp32")
    logged = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").open()]
    scores = {entry["step"]: entry["validation"] for entry in logged if "validation" in entry}
    assert sorted(scores) == [0, 2, 4]
    card = store.load_model(out, "generate").info.card
    assert scores[card["exported_step"]] == min(scores.values())
    assert card["validation_score"] == pytest.approx(min(scores.values()), abs=1e-4)
    assert "8 samples" in card["validation"]
    with pytest.raises(ArtganError, match="go together"):
        _train("--data", str(data), "--name", "half", "--size", "64", "--validate", "8",
               "--steps", "1", "--run-dir", str(tmp_path / "run2"))


class _Replay(torch.nn.Module):
    """A stand-in generator that returns given pictures (in [-1, 1]) whatever the latents."""

    latent_dim = 256

    def __init__(self, pictures: torch.Tensor):
        super().__init__()
        self.pictures = pictures * 2 - 1
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.pictures[: len(z)]


def test_validation_scores_a_mesh_and_a_collapse_worse_than_the_pictures_themselves():
    from artgan_generate.validation import GenerateValidation

    torch.manual_seed(0)
    fields = torch.nn.functional.interpolate(torch.rand(32, 3, 8, 8), size=64, mode="bilinear")
    paintings, alike = fields[:16], fields[16:]  # two sets of one kind of picture
    validation = GenerateValidation(paintings, 16, 256, metric="swd+artefacts")
    checker = (torch.arange(64)[:, None] + torch.arange(64)) % 2 * 0.06 - 0.03
    meshy = (alike + checker).clamp(0, 1)
    collapsed = alike[:1].expand(16, -1, -1, -1)
    good = validation(_Replay(alike))
    assert validation(_Replay(meshy)) > 1.5 * good
    assert validation(_Replay(collapsed)) > 1.5 * good


def _weights(path: Path) -> dict[str, torch.Tensor]:
    """The generator's learnt weights (not BN's running statistics, which export re-measures)."""
    network = store.load_model(path, "generate").network
    return {name: value.float() for name, value in network.named_parameters()}


def test_init_fine_tunes_a_model_after_the_discriminator_warms_up(model, tmp_path):
    data = _paintings(tmp_path / "data", 4)
    common = ("--data", str(data), "--init", str(model), "--batch-size", "2", "--d-warmup", "1",
              "--device", "cpu", "--precision", "fp32", "--ema", "0.5")
    warm = tmp_path / "warm.safetensors"
    _train(*common, "--name", "warm", "--steps", "1", "--out", str(warm),
           "--run-dir", str(tmp_path / "run1"))
    start = _weights(model)
    assert all(torch.equal(start[name], value) for name, value in _weights(warm).items())
    tuned = tmp_path / "tuned.safetensors"
    _train(*common, "--name", "tuned", "--steps", "2", "--antialias", "--out", str(tuned),
           "--run-dir", str(tmp_path / "run2"))
    loaded = store.load_model(tuned, "generate")
    assert loaded.config == {"size": 32, "width": 4, "latent_dim": 256, "antialias": True}
    assert loaded.info.card["init"] == str(model) and loaded.info.card["d_warmup"] == 1
    assert any(not torch.equal(start[name], value) for name, value in _weights(tuned).items())
    with pytest.raises(ArtganError, match="--width 8: --init .* has width 4; leave --width out"):
        _train(*common, "--name", "wide", "--width", "8", "--steps", "1",
               "--run-dir", str(tmp_path / "run3"))


def test_a_fine_tune_resumes_with_its_init_given_again(model, tmp_path):
    data = _paintings(tmp_path / "data", 4)
    common = ("--data", str(data), "--name", "again", "--batch-size", "2", "--device", "cpu",
              "--precision", "fp32", "--run-dir", str(tmp_path / "run"),
              "--out", str(tmp_path / "again.safetensors"))
    _train(*common, "--init", str(model), "--steps", "1")
    with pytest.raises(ArtganError, match="--size 32"):  # a new model's shape: refused
        _train(*common, "--steps", "2", "--resume")
    _train(*common, "--init", str(model), "--steps", "2", "--resume")
    assert store.load_model(tmp_path / "again.safetensors", "generate").info.card["steps"] == 2


def test_the_shape_is_the_defaults_the_options_or_the_init_models(model):
    def start(**given):
        options = {"size": None, "width": None, "antialias": None, "noise": None, "init": None,
                   **given}
        return generate_task._starting_point(options)

    plain = {"antialias": False, "noise": False}
    assert start() == ({"size": 128, "width": 32, "latent_dim": 256, **plain}, None)
    assert start(size="64", width=8, antialias=True, noise=True)[0] == \
        {"size": 64, "width": 8, "latent_dim": 256, "antialias": True, "noise": True}
    shape, weights = start(init=str(model))
    assert shape == {"size": 32, "width": 4, "latent_dim": 256, **plain}
    assert weights.keys() == store.load_model(model, "generate").network.state_dict().keys()
    assert start(init=str(model), antialias=True)[0]["antialias"] is True  # no weights
    assert start(init=str(model), size="32", width=4)[0]["size"] == 32  # given and equal
    with pytest.raises(ArtganError, match="--size 64: --init .* has size 32; leave --size out"):
        start(init=str(model), size="64")
    with pytest.raises(ArtganError, match="--noise True: --init .* has noise False"):
        start(init=str(model), noise=True)  # noise has weights: it is part of the shape


def test_training_with_fewer_pictures_than_the_batch_fails(tmp_path):
    data = _paintings(tmp_path / "few", 3)
    with pytest.raises(ArtganError, match="3 readable pictures, fewer than the batch size 4"):
        _train("--data", str(data), "--name", "few", "--size", "32", "--width", "2",
               "--batch-size", "4", "--steps", "1", "--run-dir", str(tmp_path / "run"))


def test_training_rejects_a_bad_name(tmp_path):
    with pytest.raises(ArtganError, match="--name"):
        TASK.train(data=str(tmp_path), name="../x", steps=1)


# --- sampling -----------------------------------------------------------------------------


def test_same_seed_writes_byte_identical_files(model, tmp_path):
    for folder in ("a", "b"):
        _run("--model", str(model), "-n", "3", "--seed", "7", "--out", str(tmp_path / folder))
    _run("--model", str(model), "-n", "3", "--seed", "8", "--out", str(tmp_path / "c"))
    first = _files(tmp_path / "a")
    assert list(first) == ["seed7-0000.png", "seed7-0001.png", "seed7-0002.png"]
    assert first == _files(tmp_path / "b")
    assert list(first.values()) != list(_files(tmp_path / "c").values())


def test_pictures_are_written_as_they_are_made(model, tmp_path, monkeypatch):
    events = []
    make, write = GeneratorPipeline.images, generate_task.write_image

    def images(self, z):
        events.append(("made", len(z)))
        return make(self, z)

    def write_image(image, path, **options):
        events.append(("written", path.name))
        return write(image, path, **options)

    monkeypatch.setattr(GeneratorPipeline, "images", images)
    monkeypatch.setattr(generate_task, "write_image", write_image)
    count = 2 * CHUNK + 3
    _run("--model", str(model), "-n", str(count), "--out", str(tmp_path))
    chunk = [("written", f"seed0-{i:04d}.png") for i in range(CHUNK)]
    assert events[:CHUNK + 2] == [("made", CHUNK), *chunk, ("made", CHUNK)]
    assert [size for what, size in events if what == "made"] == [CHUNK, CHUNK, 3]
    last = Image.open(tmp_path / f"seed0-{count - 1:04d}.png")
    assert np.array_equal(np.asarray(last), np.asarray(TASK.load(str(model))(count)[-1]))


def test_named_model_python_api_matches_the_files(model, tmp_path):
    _run("--model", "tiny", "-n", "2", "--out", str(tmp_path / "one.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one-0000.png", "one-0001.png"]
    images = artgan.generate(2, model="tiny", seed=0)
    assert [im.size for im in images] == [(32, 32)] * 2
    assert np.array_equal(np.asarray(images[1]), np.asarray(Image.open(tmp_path / "one-0001.png")))
    truncated = artgan.generate(1, model="tiny", seed=0, truncation=0.5)[0]
    assert not np.array_equal(np.asarray(truncated), np.asarray(images[0]))


def test_grid_is_one_picture(model, tmp_path):
    _run("--model", str(model), "-n", "5", "--grid", "--out", str(tmp_path / "grid.png"))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
    assert Image.open(tmp_path / "grid.png").size == (3 * 32 + 4 * 2, 2 * 32 + 3 * 2)


def test_interpolation_writes_frames_and_a_looping_gif(model, tmp_path):
    _run("--model", str(model), "--interpolate", "3", "--frames", "6", "--out",
         str(tmp_path / "walk"))
    frames = sorted((tmp_path / "walk").glob("frame-*.png"))
    assert len(frames) == 6
    with Image.open(tmp_path / "walk" / "walk.gif") as gif:
        assert gif.n_frames == 6 and gif.info.get("loop") == 0
    _run("--model", str(model), "--interpolate", "2", "--frames", "4", "--out",
         str(tmp_path / "loop.webp"))
    assert len(list((tmp_path / "loop-frames").iterdir())) == 4
    with Image.open(tmp_path / "loop.webp") as webp:
        assert webp.n_frames == 4
    pictures = artgan.interpolate(model=str(model), seeds=(0, 1), frames=4)
    assert len(pictures) == 4 and pictures[0].size == (32, 32)


# --- bad input ----------------------------------------------------------------------------


def test_unknown_model_name_suggests(model):
    with pytest.raises(UnknownNameError, match="did you mean 'tiny'"):
        TASK.run(model="tinny", count=1)


@pytest.mark.parametrize("count", ["0", "-3"])
def test_count_must_be_positive(model, count, tmp_path):
    with pytest.raises(ArtganError, match="must be at least 1"):
        task_command(TASK, "run").main(["--model", str(model), "-n", count, "--out",
                                        str(tmp_path)], standalone_mode=False)
    with pytest.raises(ArtganError, match="must be at least 1"):
        artgan.generate(int(count), model=str(model))


def test_unwritable_output_fails_before_sampling(model, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    for out in (blocker / "sub", blocker / "sub" / "x.png", blocker):
        with pytest.raises(ArtganError, match="is a file, not a folder"):
            TASK.run(model="no-such-model", count=2, out=str(out))
    with pytest.raises(ArtganError, match="is a file, not a folder"):
        TASK.train(data=str(tmp_path), name="x", steps=1,
                   out=str(blocker / "m.safetensors"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"truncation": 0.0}, r"truncation must be in \(0, 1\]"),
        ({"interpolate": 1}, "at least 2 seeds"),
        ({"interpolate": 2, "count": 4}, "drop -n"),
        ({"interpolate": 2, "frames": 0}, "--frames must be at least 1"),
        ({"interpolate": 2, "out": "walk.png"}, "needs a folder or a .gif/.webp"),
    ],
)
def test_bad_sampling_options(model, options, message):
    with pytest.raises(ArtganError, match=message):
        TASK.run(model=str(model), **options)


def test_anchor_weight_ties_a_fine_tune_to_its_start(model, tmp_path):
    data = _paintings(tmp_path / "data", 4)
    common = ("--data", str(data), "--batch-size", "2", "--device", "cpu", "--precision",
              "fp32")
    out = tmp_path / "tied.safetensors"
    _train(*common, "--init", str(model), "--name", "tied", "--steps", "1",
           "--anchor-weight", "5", "--anchor-blur", "0", "--out", str(out),
           "--run-dir", str(tmp_path / "run"))
    logged = [entry["anchor"] for entry in map(json.loads, (tmp_path / "run" / "log.jsonl")
                                               .open()) if "anchor" in entry]
    # the first step's generator is the start, and the two normalise the batch alike
    assert logged and logged[0] < 1e-6
    card = store.load_model(out, "generate").info.card
    assert card["anchor_weight"] == 5 and card["anchor_blur"] == 0
    # the start is kept in the checkpoint: resumed with another --init, the run stays held
    # to the model it began from
    start = _weights(model)
    saved = checkpoint.load(tmp_path / "run" / "checkpoints")["module"]["anchor"]
    assert all(torch.equal(saved[name].float(), value) for name, value in start.items())
    _train(*common, "--init", str(out), "--name", "tied", "--steps", "2", "--anchor-weight",
           "5", "--out", str(out), "--run-dir", str(tmp_path / "run"), "--resume")
    saved = checkpoint.load(tmp_path / "run" / "checkpoints")["module"]["anchor"]
    assert all(torch.equal(saved[name].float(), value) for name, value in start.items())
    with pytest.raises(ArtganError, match="--anchor-weight needs --init"):
        _train(*common, "--name", "loose", "--size", "32", "--steps", "1",
               "--anchor-weight", "5", "--run-dir", str(tmp_path / "run2"))
