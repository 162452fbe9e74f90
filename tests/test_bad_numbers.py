"""Numbers no run can use (NaN budgets, zero sizes, seeds over 64 bits) are one clear error,
never an exception from deep inside; and what saves and reads leave behind stays tidy."""

import os
import time

import click
import pytest
from artgan_generate import TASK
from artgan_generate.model import ARCHITECTURE, FastGANGenerator
from PIL import Image

import artgan
from artgan import data, metrics, store
from artgan.cli import cli, task_command
from artgan.errors import ArtganError
from artgan.train.config import TrainConfig

HUGE_SEED = "99999999999999999999999"


def _refused(option: str, command: click.Command, *args: str) -> str:
    """The usage error ``command ARGS`` stops at, checked to name ``option``."""
    with pytest.raises(click.BadParameter) as caught:
        command.main(list(args), standalone_mode=False)
    message = caught.value.format_message()
    assert option in message and "\n" not in message
    return message


def _train_refuses(option: str, *args: str) -> str:
    """Bad options stop ``artgan train generate`` before any data is read."""
    return _refused(option, task_command(TASK, "train"), "--data", "nowhere", "--name", "x",
                    *args)


@pytest.fixture
def folders(tmp_path):
    for name in ("real", "fake"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (20, 20), (90, 60, 30)).save(tmp_path / name / "a.png")
    return tmp_path / "real", tmp_path / "fake"


def _save_generator(path):
    """An untrained 32 px generator: enough to reach the seeding."""
    config = {"size": 32, "width": 4, "latent_dim": 8}
    return store.save_model(FastGANGenerator(**config), path, task="generate",
                            architecture=ARCHITECTURE, config=config)


@pytest.fixture
def generator(tmp_path):
    return _save_generator(tmp_path / "g.safetensors")


@pytest.mark.parametrize("minutes", ["nan", "inf", "NaN", "-inf"])
def test_train_minutes_must_be_finite(minutes):
    _train_refuses("--minutes", "--minutes", minutes)


@pytest.mark.parametrize("option", ["--ema", "--ada-target"])
def test_train_fractions_refuse_nan(option):
    assert "not a finite number" in _train_refuses(option, "--steps", "1", option, "nan")


@pytest.mark.parametrize("seed", [HUGE_SEED, str(2**63), "-1"])
def test_train_seed_must_fit_in_63_bits(seed):
    _train_refuses("--seed", "--steps", "1", "--seed", seed)


@pytest.mark.parametrize("settings", [{"minutes": float("nan")}, {"minutes": float("inf")},
                                      {"steps": 1, "seed": 2**70}, {"steps": 1, "seed": -1}])
def test_train_config_refuses_the_same_numbers(tmp_path, settings):
    with pytest.raises(ArtganError, match="--(minutes|seed) must be"):
        TrainConfig(run_dir=tmp_path, **settings)


def test_train_config_takes_the_largest_seed(tmp_path):
    assert TrainConfig(run_dir=tmp_path, steps=1, seed=2**63 - 1).seed == 2**63 - 1


@pytest.mark.parametrize("size", ["0", "-5"])
def test_eval_size_must_be_positive(folders, size):
    real, fake = folders
    _refused("--size", cli, "eval", str(real), str(fake), "--size", size)


@pytest.mark.parametrize("size", [0, -5])
def test_evaluate_size_must_be_positive(folders, size):
    with pytest.raises(ArtganError, match="size must be at least 1"):
        metrics.evaluate(*folders, size=size)


@pytest.mark.parametrize("seed", [HUGE_SEED, "-1"])
def test_generate_seed_out_of_range_is_one_error(generator, tmp_path, seed):
    # refused as the option is parsed, before the model loads: a one-line usage error
    with pytest.raises(click.BadParameter, match="0<=x<=9223372036854775807"):
        task_command(TASK, "run").main(["--model", str(generator), "--seed", seed, "-n", "1",
                                        "--out", str(tmp_path / "out")], standalone_mode=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("seed", [2**70, 2**63, -1, 1.5])
def test_python_generate_seed_out_of_range_is_one_error(generator, seed):
    with pytest.raises(ArtganError, match="--seed must be a whole number"):
        artgan.generate(1, model=str(generator), seed=seed)


def test_python_generate_takes_the_largest_seed(generator):
    assert len(artgan.generate(1, model=str(generator), seed=2**63 - 1)) == 1


# --- leftovers and warnings ----------------------------------------------------------------


def test_a_save_removes_stale_temporaries_of_its_destination(tmp_path):
    """Temporaries of killed saves go; a live save's, and other files', stay."""
    old = time.time() - store.STALE_TEMPORARY_SECONDS - 60
    stale = tmp_path / ".m.safetensors.k1ll3d_x.tmp"
    live = tmp_path / ".m.safetensors.wr1t1ng0.tmp"
    other = tmp_path / ".other.safetensors.k1ll3d_x.tmp"
    for path in (stale, live, other):
        path.write_bytes(b"half a model")
    for path in (stale, other):
        os.utime(path, (old, old))
    _save_generator(tmp_path / "m.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, "m.safetensors"])


def test_skipped_files_are_one_warning_line(folders, capsys, recwarn):
    real, fake = folders
    (real / "broken.png").write_bytes(b"not a png")
    metrics.evaluate(real, fake, size=16)
    data.ImageFolder(real, 8, cache=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(
        line.startswith("warning: skipping ") and "broken.png: " in line for line in lines)
    assert not recwarn.list, "no raw Python warnings"
