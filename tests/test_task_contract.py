"""One contract test per registered task and architecture, in the manner of timm's tests:
a task a plugin adds is tested here for free.

Every task: its ``run`` (and ``train``, if it trains) help builds; its default model loads
into one of the two pipeline contracts of ``artgan.task`` and runs on something small;
the model survives a save/load round trip with identical weights.
"""

import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import artgan
from artgan import plugins, store
from artgan.cli import cli


def _registered(kind: str) -> list[str]:
    names = plugins.registry(kind).names()
    plugins.reset()
    return names


TASKS = _registered("task")
ARCHITECTURES = _registered("architecture")


def test_the_builtins_are_covered():
    assert {"generate", "restore", "style-transfer"} <= set(TASKS)
    assert {"cyclegan", "fastgan", "restore"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", TASKS)
def test_help_builds(name):
    task = plugins.get_task(name)
    runner = CliRunner()
    result = runner.invoke(cli, ["run", name, "--help"])
    assert result.exit_code == 0 and task.description in " ".join(result.output.split())
    if task.train_options():
        assert runner.invoke(cli, ["train", name, "--help"]).exit_code == 0


def _default(name: str):
    task = plugins.get_task(name)
    if task.default_model is None:
        pytest.skip(f"{name} ships no default model")
    return task


@pytest.mark.parametrize("name", TASKS)
def test_the_default_model_loads_into_a_pipeline_contract_and_runs(name):
    _default(name)
    loaded = artgan.load(name)
    assert isinstance(loaded, artgan.Pipeline | artgan.Sampler)
    if isinstance(loaded, artgan.Sampler):
        first, = loaded(1, seed=3)
        again, = loaded(1, seed=3)
        assert isinstance(first, Image.Image)
        assert np.array_equal(np.asarray(first), np.asarray(again))
        frames = loaded.interpolate((0, 1), frames=3)
        assert len(frames) == 3 and all(isinstance(f, Image.Image) for f in frames)
        return
    rows, cols = np.mgrid[0:40, 0:56]  # a smooth picture: noise would be all damage to restore
    picture = np.stack([rows * 5, cols * 4, 255 - rows * 3], -1).astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. restore: "looks undamaged"
        as_array = loaded(picture)
        as_image = loaded(Image.fromarray(picture))
        as_tensor = loaded(torch.from_numpy(picture).permute(2, 0, 1).float() / 255)
    assert isinstance(as_array, np.ndarray) and as_array.shape == picture.shape
    assert isinstance(as_image, Image.Image) and as_image.size == (56, 40)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.shape == (3, 40, 56)


@pytest.mark.parametrize("name", TASKS)
def test_the_default_model_survives_a_save_load_round_trip(name, tmp_path):
    task = _default(name)
    loaded = store.load_model(task.default_model, name)
    metadata = loaded.info.metadata
    path = store.save_model(loaded.network, tmp_path / "copy.safetensors", task=name,
                            architecture=metadata["architecture"], config=loaded.config,
                            card=loaded.info.card)
    again = store.load_model(path, name)
    assert again.info.metadata["architecture"] == metadata["architecture"]
    assert again.config == loaded.config and again.info.card == loaded.info.card
    expected = loaded.network.state_dict()
    for key, value in again.network.state_dict().items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_has_a_model_that_rebuilds_it(architecture):
    """Each registered architecture is named by some findable model, whose config builds it."""
    using = [m for m in store.list_models() if m.metadata["architecture"] == architecture]
    if not using:
        pytest.skip(f"no model file uses {architecture!r}")
    network = plugins.registry("architecture").get(architecture)(**using[0].metadata["config"])
    assert isinstance(network, torch.nn.Module)
