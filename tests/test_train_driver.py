"""``artgan.train.driver``: the steps every task's ``train`` shares, on a made-up task."""

from pathlib import Path

import click
import pytest
import torch
from torch.utils.data import TensorDataset

from artgan import ArtganError, store
from artgan.train.config import TrainConfig
from artgan.train.driver import option_defaults, prepare, resumable_loader, shared_options


def params(validate: bool = False) -> list[click.Parameter]:
    own = [click.Option(["--data"], required=True), click.Option(["--name"], required=True),
           click.Option(["--out"]), click.Option(["--width"], type=int, default=8)]
    if validate:
        own.append(click.Option(["--validate"], type=int, default=0))
    return own + shared_options("toy", {"ema": 0.99, "lr_schedule": "linear"})


def test_shared_options_take_the_task_defaults_and_skip():
    options = {option.name: option for option in shared_options("toy", {"ema": 0.99},
                                                                 skip=("augment",))}
    assert options["ema"].default == 0.99 and options["ema"].show_default
    assert "augment" not in options and "ada_target" in options
    assert "runs/toy/NAME" in options["run_dir"].help
    assert option_defaults(list(options.values()))["checkpoint_every"] == 500


def test_prepare_fills_defaults_and_works_out_the_paths(tmp_path):
    run = prepare("toy", params(), {"data": "pics", "name": "a.b-1", "steps": 2, "ema": None})
    assert run.options["width"] == 8 and run.options["data"] == "pics"
    assert run.out == store.user_model_dir() / "toy" / "a.b-1.safetensors"
    assert run.config.run_dir == Path("runs") / "toy" / "a.b-1"
    assert (run.config.ema_decay, run.config.lr_schedule, run.config.steps) == (0.99, "linear", 2)
    given = prepare("toy", params(), {"data": "pics", "name": "x", "steps": 1, "width": 3,
                                      "out": str(tmp_path / "m.safetensors"),
                                      "run_dir": tmp_path / "run", "lr_schedule": "constant"})
    assert given.out == tmp_path / "m.safetensors" and given.config.run_dir == tmp_path / "run"
    assert given.options["width"] == 3 and given.config.lr_schedule == "constant"
    assert isinstance(given.config, TrainConfig)


@pytest.mark.parametrize(("options", "message"), [
    ({"name": "../x"}, "--name '../x'"),
    ({"name": ".hidden"}, "--name"),
    ({"data": None}, "training needs --data"),
    ({"out": "model.pt"}, "model files end in .safetensors"),
    ({"steps": None}, "budget"),
])
def test_prepare_refuses_bad_options(options, message):
    with pytest.raises(ArtganError, match=message):
        prepare("toy", params(), {"data": "pics", "name": "x", "steps": 1, **options})


def test_prepare_refuses_an_unwritable_model_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    (tmp_path / "folder.safetensors").mkdir()
    for out, message in ((blocker / "sub" / "m.safetensors", "is a file, not a folder"),
                         (tmp_path / "folder.safetensors", "is a folder")):
        with pytest.raises(ArtganError, match=message):
            prepare("toy", params(), {"data": "d", "name": "x", "steps": 1, "out": str(out)})


@pytest.mark.parametrize("options", [{"validate": 2}, {"validate_every": 5}])
def test_validate_and_validate_every_go_together(options):
    base = {"data": "d", "name": "x", "steps": 1}
    with pytest.raises(ArtganError, match="go together"):
        prepare("toy", params(validate=True), {**base, **options})
    both = prepare("toy", params(validate=True), {**base, "validate": 2, "validate_every": 5})
    assert both.config.validate_every == 5
    if "validate_every" in options:  # a task without --validate leaves it to its step
        assert prepare("toy", params(), {**base, **options}).config.validate_every == 5


def test_resumable_loader_starts_where_a_run_left_off(tmp_path):
    dataset = TensorDataset(torch.arange(10.0))
    config = TrainConfig(run_dir=tmp_path, steps=1, seed=3)
    loader = resumable_loader(dataset, 2, config)
    whole = iter(loader(0))
    first = [next(whole)[0] for _ in range(5)]
    resumed = next(iter(loader(3)))[0]
    assert torch.equal(resumed, first[3])
    assert sorted(torch.cat(first).tolist()) == [float(i) for i in range(10)]

