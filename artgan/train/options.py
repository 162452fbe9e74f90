"""The ``artgan train TASK`` options every task shares, and the TrainConfig they build.

Tasks add them to their own ``Task.train_options()`` (with their defaults, through
``artgan.train.driver.shared_options``) and ``driver.prepare`` turns the parsed values into a
config with ``config_from_options(**options)``, so budgets, precision and checkpointing are
spelled the same way for every task.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from artgan.train.config import LR_SCHEDULES, PRECISIONS, SEED_LIMIT, TrainConfig

# CLI option name -> TrainConfig field, where they differ.
_RENAMED = {"ema": "ema_decay"}


class FiniteFloatRange(click.FloatRange):
    """A ``FloatRange`` that refuses ``nan`` and ``inf``: click parses both, and NaN passes
    every bound check (a NaN or infinite budget later crashed the trainer)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def train_options() -> list[click.Option]:
    """Click options for the shared training settings (defaults as in ``TrainConfig``)."""
    return [
        click.Option(["--steps"], type=click.IntRange(min=1),
                     help="Training budget in steps (total, across resumes)."),
        click.Option(["--minutes"], type=FiniteFloatRange(min=0, min_open=True),
                     help="Training budget in wall-clock minutes (total, across resumes: "
                          "--resume trains until the whole run has taken this long, so give "
                          "a larger value to train on); stops cleanly and exports."),
        click.Option(["--run-dir"], type=click.Path(file_okay=False, path_type=Path),
                     help="Folder for checkpoints, log.jsonl and samples (default: runs/TASK)."),
        click.Option(["--resume"], is_flag=True,
                     help="Continue the run in --run-dir from its latest checkpoint."),
        click.Option(["--device"], default="auto", show_default=True,
                     help="auto, cpu, cuda, cuda:N or mps."),
        click.Option(["--precision"], type=click.Choice(PRECISIONS), default="auto",
                     show_default=True,
                     help="auto: bf16 on CUDA and bf16-capable CPUs, else fp32; fp16: CUDA only."),
        click.Option(["--channels-last"], is_flag=True,
                     help="Use the channels-last memory format (often faster on GPUs)."),
        click.Option(["--compile"], is_flag=True, help="torch.compile the networks."),
        click.Option(["--ema"], type=FiniteFloatRange(0, 1, min_open=True, max_open=True),
                     help="Keep an exponential moving average of the generator (e.g. 0.999)."),
        click.Option(["--lr-schedule"], type=click.Choice(LR_SCHEDULES), default="constant",
                     show_default=True,
                     help="linear: constant for the first half, then down to 0."),
        click.Option(["--checkpoint-every"], type=click.IntRange(min=1), default=500,
                     show_default=True, help="Steps between checkpoints."),
        click.Option(["--sample-every"], type=click.IntRange(min=1), default=500,
                     show_default=True, help="Steps between sample grids."),
        click.Option(["--validate-every"], type=click.IntRange(min=1), metavar="N",
                     help="Score the model on held-out data every N steps (tasks that "
                          "validate) and export the best-scoring weights, not the last."),
        click.Option(["--seed"], type=click.IntRange(0, SEED_LIMIT - 1), default=0,
                     show_default=True, help="Random seed."),
        click.Option(["--augment"], default=None,
                     help='Differentiable augmentation policy, e.g. "color,translation,cutout".'),
        click.Option(["--ada-target"], type=FiniteFloatRange(0, 1),
                     help="Adapt the augmentation probability to this D(real) sign target "
                          "(e.g. 0.6); implies --augment color,translation,cutout if unset."),
        click.Option(["--data-license"], metavar="TEXT",
                     help="Licence of the training pictures, kept in the model card."),
    ]


def artefact_weight_option(generated: str, reference: str) -> click.Option:
    """``--artefact-weight``, for tasks whose generators can train against the mesh
    (``artgan.losses.periodic_artefact_loss``): how far the ``generated`` pictures' score
    may exceed the ``reference`` ones' before it costs."""
    return click.Option(
        ["--artefact-weight"], type=FiniteFloatRange(min=0), default=0.0, show_default=True,
        metavar="W", help=f"Weight of a penalty on how far {generated} periodic-artefact "
        f"score (artgan.metrics.periodic_artefacts) exceeds {reference}: against the mesh, "
        "dot grid or dashes a generator learns; pictures of at least 64 px, and from 128 px "
        "an octave lower too (artgan.metrics.periodic_lattice).")


VALIDATION_METRICS = {"swd": "SWD", "swd+artefacts": "SWD x artefact ratio"}
"""What ``--validate-by`` may score, and how a model card names it: SWD alone, or SWD times
the mesh ratio (``artgan.metrics.swd_times_mesh``)."""


def validate_by_option(scored: str, reference: str, own: str, made: str) -> click.Option:
    """``--validate-by``, for tasks that validate a generator's pictures by SWD to a set of
    paintings: the ``scored`` pictures' SWD to ``reference``, or that times how many times
    the ``own`` score of periodic artefacts the ``made`` pictures have."""
    return click.Option(
        ["--validate-by"], type=click.Choice(list(VALIDATION_METRICS)), default="swd+artefacts",
        show_default=True, help=f"What --validate scores: {scored} SWD to {reference}, or "
        f"that times how many times {own} own periodic-artefact score (the mesh) {made} "
        "have, when more than 1.")


def anchor_options() -> list[click.Option]:
    """``--anchor-weight`` and ``--anchor-blur``, for tasks that fine-tune a generator
    (``--init``): how closely its pictures must keep to the start's
    (``artgan.losses.anchor_loss``)."""
    from artgan.losses import ANCHOR_BLUR

    return [
        click.Option(
            ["--anchor-weight"], type=FiniteFloatRange(min=0), default=0.0, show_default=True,
            metavar="W", help="With --init: weight of an L1 between the generated pictures "
            "and what the --init model makes of the same inputs, both blurred by "
            "--anchor-blur, to hold a fine-tune near its start."),
        click.Option(
            ["--anchor-blur"], type=FiniteFloatRange(min=0), default=ANCHOR_BLUR,
            show_default=True, metavar="PX", help="Gaussian blur (px) before --anchor-weight "
            "compares: fine detail below it (a mesh, a dot grid) stays free to change; 0 "
            "ties every pixel."),
    ]


def d_warmup_option() -> click.Option:
    """``--d-warmup``, for tasks that fine-tune a generator (``--init``) against a new
    discriminator: its first gradients would otherwise come from a random judge."""
    return click.Option(
        ["--d-warmup"], type=click.IntRange(min=0), default=0, show_default=True,
        metavar="STEPS", help="Train only the discriminators for the first STEPS steps: with "
        "--init, the generators' first gradients then come from discriminators that already "
        "judge, not from new random ones.")


def config_from_options(*, task: str = "train", **options: Any) -> TrainConfig:
    """Build a TrainConfig from parsed options; keys that are not training settings are ignored.

    ``--run-dir`` defaults to ``runs/<task>``.
    """
    fields = set(TrainConfig.field_names())
    values = {}
    for key, value in options.items():
        name = _RENAMED.get(key, key)
        if name in fields and value is not None:
            values[name] = value
    values.setdefault("run_dir", Path("runs") / task)
    if values.get("ada_target") is not None and not values.get("augment"):
        values["augment"] = "color,translation,cutout"
    return TrainConfig(**values)
