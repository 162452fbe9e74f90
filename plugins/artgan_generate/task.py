"""The ``generate`` task: its CLI options, sampling to files, and training from a folder.

It takes no input images, so ``run_options``/``run`` replace the base class's INPUTS
argument with a count and a seed. Sampling defaults to the CPU (with OpenVINO where it is
installed: ``artgan.backends``): with the seeded latents of ``sampling`` that makes the same
seed write byte-identical files on one machine. Pictures are written as each chunk of them
is made, so ``-n 100000`` holds one chunk, not all. The training code is imported only when
training: every command loads this plugin, and the trainer's imports would add to each
one's start-up.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from artgan import ArtganError, Task, backends, store
from artgan.imageio import check_writable, write_animation, write_image
from artgan.task import backend_option

from . import output
from .checks import SEED_LIMIT, check_count, check_truncation

if TYPE_CHECKING:  # torch-heavy: imported when a model loads, not with the CLI
    from torch import Tensor

    from .sampling import GeneratorPipeline


DEFAULT_SHAPE = {"size": 128, "width": 32, "latent_dim": 256, "noise": False}
"""A new model's shape; a fine-tune (--init) takes its model's."""


class GenerateTask(Task):
    name = "generate"
    description = "Paint new pictures in the style of a small collection (FastGAN)."
    default_model = "monet"

    def output_suffixes(self) -> tuple[str, ...]:
        return ()  # it writes new pictures, never beside inputs

    def run_options(self) -> list[click.Parameter]:
        return [
            click.Option(["--model", "-m"], help=f"Model name or .safetensors path "
                         f"(default: {self.default_model})."),
            click.Option(["-n", "--count"], type=int,
                         help="How many pictures (default 16)."),
            click.Option(["--seed", "-s"], type=click.IntRange(0, SEED_LIMIT - 1), default=0,
                         show_default=True,
                         help="Random seed: the same seed gives the same pictures."),
            click.Option(["--out", "-o"], help="Output folder or .png file; with --interpolate "
                         f"a folder or .gif/.webp file (default: {output.DEFAULT_OUT}/)."),
            click.Option(["--grid"], is_flag=True, help="Write one grid image instead of files."),
            click.Option(["--truncation", "-t"], type=float, default=1.0, show_default=True,
                         help="Below 1: more typical, less varied pictures (e.g. 0.7)."),
            click.Option(["--interpolate"], type=int, metavar="K",
                         help="Write a looping latent walk through K seeds (seed, seed+1, ...)."),
            click.Option(["--frames"], type=int, default=48, show_default=True,
                         help="Frames in the --interpolate walk."),
            click.Option(["--fps"], type=float, default=12, show_default=True,
                         help="Frames per second of the --interpolate animation."),
            click.Option(["--device"], default="cpu", show_default=True,
                         help="cpu (reproducible to the byte), auto, cuda or mps."),
            backend_option(),
        ]

    def train_options(self) -> list[click.Parameter]:
        from artgan.train.driver import init_default_help, shared_options
        from artgan.train.options import (
            anchor_options,
            artefact_weight_option,
            d_warmup_option,
            validate_by_option,
        )

        from .model import SIZES

        # FastGAN's settings of the shared options
        shared = shared_options(self.name, {"augment": "color,translation", "ema": 0.999})
        return [
            click.Option(["--data"], required=True, metavar="FOLDER",
                         help="Folder of training pictures (any sizes and modes; 100+ works)."),
            click.Option(["--name"], required=True, help="Name to save the model under."),
            click.Option(["--size"], type=click.Choice([str(s) for s in SIZES]),
                         help=init_default_help("Picture size in pixels (32: quick tests)",
                                                DEFAULT_SHAPE["size"])),
            click.Option(["--width"], type=click.IntRange(min=1),
                         help=init_default_help("Network width (64 as in FastGAN on a GPU; "
                                                "16 is fast on a CPU)", DEFAULT_SHAPE["width"])),
            click.Option(["--antialias/--no-antialias"], default=None,
                         help="Blur after each upsampling of the generator and before each "
                              "strided convolution of the discriminator: against a grid of "
                              "dashes in the pictures; adds no weights, so an --init model "
                              "without it can be fine-tuned with it (default: as the --init "
                              "model has it, else off)."),
            click.Option(["--noise/--no-noise"], default=None,
                         help="Add learnt per-pixel noise in the generator (FastGAN's noise "
                              "injection), a source of fine texture; sampling reads one fixed "
                              "noise picture saved with the model, so a seed still fixes a "
                              "picture (default: as the --init model has it, else off)."),
            click.Option(["--init"], metavar="MODEL",
                         help="Start the generator from this generate model (name or file) "
                              "instead of from scratch, against a new discriminator (see "
                              "--d-warmup): fine-tuning, e.g. to a new collection or against "
                              "the mesh; its --size and --width are used. Give it again "
                              "with --resume."),
            d_warmup_option(),
            artefact_weight_option("the generated pictures'", "the training pictures'"),
            *anchor_options(),
            click.Option(["--batch-size"], type=click.IntRange(min=1), default=16,
                         show_default=True, help="Pictures per step."),
            click.Option(["--lr"], type=click.FloatRange(min=0, min_open=True), default=2e-4,
                         show_default=True, help="Adam learning rate of both networks."),
            click.Option(["--workers"], type=click.IntRange(min=0), default=0, show_default=True,
                         help="Data loading processes (pictures are cached in memory)."),
            click.Option(["--validate"], type=click.IntRange(min=0), default=0,
                         show_default=True, metavar="N",
                         help="Every --validate-every steps, score N samples from fixed "
                         "latents against the training pictures as --validate-by says; the "
                         "best-scoring step is exported (a GAN's last step is seldom its "
                         "best)."),
            validate_by_option("the samples'", "the training pictures", "the pictures'",
                               "the samples"),
            click.Option(["--out"], help="Model file (default: NAME.safetensors in the user "
                         "model folder, $ARTGAN_HOME/models/generate/)."),
            *shared,
        ]

    def load(self, model: str | None = None, device: str = "cpu",
             backend: str = "auto") -> GeneratorPipeline:
        """The generator ``model`` (name or path; None = ``monet``) on ``device``, run by
        ``backend`` (see ``artgan.backends.choose``)."""
        from .sampling import GeneratorPipeline

        backend, target = backends.choose(backend, device)
        loaded = store.load_model(model or self.default_model, self.name, target)
        network = loaded.network
        if not hasattr(network, "latent_dim") or not hasattr(network, "size"):
            raise ArtganError(f"{loaded.info.path}: not an unconditional generator")
        key = backends.weights_key(loaded.info.path, "generator") if backend == "openvino" else None
        return GeneratorPipeline(network, target, loaded.info.name, backend, key)

    def run(self, model: str | None = None, count: int | None = None, seed: int = 0,
            out: str | None = None, grid: bool = False, truncation: float = 1.0,
            interpolate: int | None = None, frames: int = 48, fps: float = 12,
            device: str = "cpu", backend: str = "auto", **options: Any) -> int:
        check_truncation(truncation)
        if interpolate is not None:
            return self._run_walk(model, interpolate, count, grid, seed, out, frames, fps,
                                  truncation, device, backend)
        count = 16 if count is None else count
        check_count(count)
        paths = [output.grid_path(out, seed)] if grid else output.image_paths(out, count, seed)
        check_writable(paths)
        images = self.load(model, device, backend).stream(count, seed, truncation)
        if grid:
            images = iter([output.grid(list(images))])
        for image, path in zip(images, paths, strict=True):
            write_image(image, path)
        if grid:
            print(f"a grid of {count} pictures written to {paths[0]}", file=sys.stderr)
        else:
            where = paths[0] if count == 1 else f"{paths[0].parent}{os.sep}"
            print(f"{count} picture{'s' if count > 1 else ''} written to {where}", file=sys.stderr)
        return 0

    def _run_walk(self, model, keys, count, grid, seed, out, frames, fps, truncation, device,
                  backend):
        if keys < 2:
            raise ArtganError(f"--interpolate needs at least 2 seeds, got {keys}")
        if count is not None or grid:
            raise ArtganError("--interpolate writes --frames pictures: drop -n and --grid")
        check_count(frames, "--frames")
        if fps <= 0:
            raise ArtganError(f"--fps must be positive, got {fps}")
        paths, animation = output.animation_paths(out, frames)
        check_writable([*paths, animation])
        seeds = range(seed, seed + keys)
        images = self.load(model, device, backend).interpolate(seeds, frames,
                                                               truncation=truncation)
        for image, path in zip(images, paths, strict=True):
            write_image(image, path)
        write_animation(images, animation, fps)
        print(f"{frames} frames written to {paths[0].parent}, animation {animation}",
              file=sys.stderr)
        return 0

    def train(self, **options: Any) -> Path:
        from artgan.train.driver import prepare

        from .training import train_generator

        run = prepare(self.name, self.train_options(), options)
        options = run.options
        shape, init = _starting_point(options)
        return train_generator(
            options["data"], run.out, run.config, size=shape["size"], width=shape["width"],
            latent_dim=shape["latent_dim"], batch_size=options["batch_size"], lr=options["lr"],
            workers=options["workers"], antialias=shape["antialias"], noise=shape["noise"],
            artefact_weight=options["artefact_weight"],
            init=init, init_name=options["init"], d_warmup=options["d_warmup"],
            anchor_weight=options["anchor_weight"], anchor_blur=options["anchor_blur"],
            validate=options["validate"], validate_by=options["validate_by"],
        )


def _starting_point(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor] | None]:
    """The generator's shape (size, width, latent_dim, antialias, noise) and, with ``--init``,
    the weights to start from. A shape option given must match the --init model's;
    --antialias may differ, as the blur has no weights."""
    given = {"size": None if options["size"] is None else int(options["size"]),
             "width": options["width"], "noise": options["noise"]}
    if not options["init"]:
        chosen = {key: value for key, value in given.items() if value is not None}
        return {**DEFAULT_SHAPE, **chosen, "antialias": bool(options["antialias"])}, None
    start = store.load_model(options["init"], GenerateTask.name)
    for key, value in given.items():
        have = start.config.get(key, False)  # older models' configs have no "noise": False
        if value is not None and value != have:
            raise ArtganError(f"--{key} {value}: --init {options['init']} has {key} "
                              f"{have}; leave --{key} out")
    antialias = options["antialias"]
    if antialias is None:
        antialias = bool(start.config.get("antialias"))
    shape = {"size": start.config["size"], "width": start.config["width"],
             "latent_dim": start.config["latent_dim"], "antialias": antialias,
             "noise": bool(start.config.get("noise"))}
    return shape, start.network.state_dict()
