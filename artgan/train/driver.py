"""The steps every ``artgan train TASK`` takes around its own networks, data and step.

Each task's ``train`` used to repeat them, its defaults kept in up to three places: check
``--name``, work out the model file and the run folder, fill in defaults, build the
TrainConfig, pair ``--validate`` with ``--validate-every``, make the loader a resume
restarts. Here they are once. A task declares its options (its own defaults of shared ones
through ``shared_options``), starts ``train`` with ``prepare`` and hands the Trainer a
``resumable_loader``; the option defaults are the one place defaults live, for the command
line and Python calls alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import torch
from torch.utils.data import DataLoader, Dataset

from artgan import store
from artgan.data import training_loader
from artgan.errors import ArtganError
from artgan.imageio import check_writable
from artgan.train.config import TrainConfig
from artgan.train.options import config_from_options, train_options

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
"""What ``--name`` may be: it names a file and a folder, so no separators, no leading dot."""


def init_default_help(text: str, default: Any) -> str:
    """Help for a model-shape option that may be left out: then it is the ``--init`` model's,
    or ``default`` for a new model (left out means None, so a value given is always checked
    against the ``--init`` model, even one equal to the default)."""
    return f"{text} (default: {default}, or the --init model's)."


def shared_options(task: str, defaults: dict[str, Any] | None = None,
                   skip: tuple[str, ...] = ()) -> list[click.Option]:
    """The shared ``train_options()`` as ``task`` has them: its ``defaults`` (shown in the
    help), without the ``skip``ped ones, and ``--run-dir`` defaulting to runs/TASK/NAME."""
    defaults = defaults or {}
    options = [option for option in train_options() if option.name not in skip]
    for option in options:
        if option.name in defaults:
            option.default = defaults[option.name]
            option.show_default = True
        elif option.name == "run_dir":
            option.help = ("Folder for checkpoints, log.jsonl and samples "
                           f"(default: runs/{task}/NAME).")
    return options


@dataclass(frozen=True)
class TrainRun:
    """A run worked out from the options: all of them (defaults filled in), the model file
    to write and the TrainConfig."""

    options: dict[str, Any]
    out: Path
    config: TrainConfig


def prepare(task: str, params: list[click.Parameter], options: dict[str, Any]) -> TrainRun:
    """Check and complete the ``options`` of ``artgan train task`` (declared by ``params``).

    Options left out or None take the defaults of ``params``, as on the command line. The
    model file is ``--out`` or NAME.safetensors in the user model folder of ``task``, and
    must be writable; the run folder ``--run-dir`` or runs/TASK/NAME. A task with a
    ``--validate`` option needs ``--validate-every`` with it, and the other way round.
    """
    given = {key: value for key, value in options.items() if value is not None}
    options = {**option_defaults(params), **given}
    missing = [param.opts[0] for param in params
               if param.required and options.get(param.name) in (None, ())]
    if missing:
        raise ArtganError(f"training needs {', '.join(missing)}")
    name = options["name"]
    if not NAME.match(name):
        raise ArtganError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
    out = Path(options["out"] or store.user_model_dir() / task / f"{name}{store.SUFFIX}")
    check_model_path(out)
    options["run_dir"] = options.get("run_dir") or Path("runs") / task / name
    config = config_from_options(task=task, **options)
    if "validate" in options and bool(options["validate"]) != bool(config.validate_every):
        raise ArtganError("--validate N and --validate-every STEPS go together: the first "
                          "sets the pictures aside, the second says how often to score them")
    return TrainRun(options, out, config)


def option_defaults(params: list[click.Parameter]) -> dict[str, Any]:
    """What the command line passes for each of ``params`` when it is left out."""
    command = click.Command("train", params=params)
    return dict(command.make_context("train", [], resilient_parsing=True).params)


def check_model_path(out: Path) -> None:
    """Fail before training if the model file ``out`` could not be written at the end."""
    if out.suffix != store.SUFFIX:
        raise ArtganError(f"--out {out}: model files end in {store.SUFFIX}")
    check_writable([out])


def resumable_loader(dataset: Dataset, batch_size: int, config: TrainConfig,
                     workers: int = 0) -> Callable[[int], DataLoader]:
    """The Trainer's loader: batches of ``dataset`` from step ``start`` on, those an
    uninterrupted run would read (one share per process under ``torchrun``)."""

    def loader(start: int) -> DataLoader:
        return training_loader(dataset, batch_size, start=start, seed=config.seed,
                               workers=workers, distributed=torch.distributed.is_initialized())

    return loader
