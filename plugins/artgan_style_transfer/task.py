"""The ``style-transfer`` task: its CLI options, the pipeline that repaints pictures, training.

Pictures of any size run through ``artgan.infer``: in one pass when they fit in a tile (with
OpenVINO, in 4 tiles' area: ``artgan.backends.WHOLE_TILES``), else in seamless tiles with
instance-norm statistics measured once on the whole (shrunk) picture, so memory stays
bounded and the style is the same across the picture. PIL pictures stay uint8
until each tile is painted and come back from the tiles as uint8: a float copy of a large
picture is four times its size. The training code is imported only when training: it pulls
in torchvision, ~200 MB of memory that inference does not need.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from PIL import Image

from artgan import ArtganError, backends, store
from artgan.imageio import attach_alpha, split_alpha
from artgan.task import Pipeline, Task, backend_option

from .model import ARCHITECTURE, ARCHITECTURES, DEFAULT_CONFIG, METHODS

if TYPE_CHECKING:  # torch is imported where a picture runs in torch (see StylePipeline)
    import torch
    from torch import nn


class StylePipeline(Pipeline):
    """One generator of a CycleGAN, ready to repaint pictures (PIL, numpy or tensors).

    ``max_size`` shrinks pictures whose longer side exceeds it (the result has that size);
    ``tile``, ``overlap`` and ``batch`` (tiles per pass) bound the memory used. With
    ``backend`` ``openvino`` the generator runs there (on the CPU), cached as ``cache_key``
    (``artgan.backends.weights_key``; None: converted anew by each pipeline).

    ``generator`` is the network, or a function that loads it (then give ``multiple``, the
    factor its sides must have): with OpenVINO, a PIL picture that runs in one pass from a
    cached conversion needs neither it nor torch, which is most of such a run's time for a
    photo (torch's import takes over a second, about as long as a 2048 px photo's pass).
    """

    def __init__(
        self,
        generator: nn.Module | Callable[[], nn.Module],
        device: torch.device | str,
        *,
        name: str = "",
        tile: int = 1024,
        overlap: int = 64,
        batch: int = 1,
        max_size: int | None = None,
        backend: str = "torch",
        cache_key: str | None = None,
        multiple: int | None = None,
    ):
        multiple = multiple or getattr(generator, "multiple", 4)
        if tile < 4 * multiple or tile % multiple:
            raise ArtganError(f"--tile {tile}: must be a multiple of {multiple}, at least "
                              f"{4 * multiple}")
        if not 0 <= overlap <= (tile - multiple) // 2:
            raise ArtganError(f"--overlap {overlap}: must be between 0 and half the tile")
        if batch < 1:
            raise ArtganError(f"--batch {batch}: must be at least 1")
        if max_size is not None and max_size < multiple:
            raise ArtganError(f"--max-size {max_size}: must be at least {multiple}")
        self._generator = generator
        self._device = device
        self.name = name
        self.multiple = multiple
        self.tile, self.overlap, self.batch, self.max_size = tile, overlap, batch, max_size
        self.backend = (backends.OpenVINOStyle(lambda: self.network, cache_key, multiple)
                        if backend == "openvino" else None)

    @cached_property
    def device(self) -> torch.device:  # type: ignore[override]
        """Where the torch path runs (a device name given is made a ``torch.device`` here,
        when torch is needed)."""
        import torch

        return torch.device(self._device)

    @cached_property
    def generator(self) -> nn.Module:
        """The generator, loaded if it was given as a function, ready on ``device``."""
        from torch import nn

        from artgan import infer

        generator = self._generator
        if not isinstance(generator, nn.Module):
            generator = generator()
        return infer.prepare(generator, self.device)

    @cached_property
    def network(self) -> nn.Module:
        """The generator on [0, 1] pictures."""
        from artgan.nn.blocks import UnitRange

        return UnitRange(self.generator)

    @cached_property
    def dtype(self) -> torch.dtype | None:
        """The autocast precision of the torch path (None: float32)."""
        from artgan import infer

        return infer.autocast_dtype(self.device)

    def __call__(self, image: Any, **kwargs: Any) -> Any:
        """PIL pictures take the uint8 path (alpha kept aside); anything else the float one."""
        if not isinstance(image, Image.Image):
            return super().__call__(image, **kwargs)
        rgb, alpha = split_alpha(image)
        self._check_size(rgb.height, rgb.width)
        if self._painted_whole(rgb.height, rgb.width):
            result = Image.fromarray(self.backend.paint(np.asarray(rgb)), "RGB")
        else:
            import torch

            from artgan.convert import pil_to_uint8, uint8_to_pil

            with torch.inference_mode():
                result = uint8_to_pil(self.process(pil_to_uint8(rgb).unsqueeze(0))[0])
        return result if alpha is None else attach_alpha(result, alpha)

    def _check_size(self, height: int, width: int) -> None:
        if min(height, width) < 4 * self.multiple:
            raise ArtganError(f"picture too small ({width}x{height}): style transfer needs at "
                              f"least {4 * self.multiple} px on each side")

    def _painted_whole(self, height: int, width: int) -> bool:
        """Whether OpenVINO paints this picture in one pass of numpy arrays (no torch): as
        ``artgan.infer.translate`` would run it, when it needs no shrinking first."""
        if self.backend is None or (self.max_size and max(height, width) > self.max_size):
            return False
        side = self.multiple
        return self.backend.fits_whole(-(-height // side) * side, -(-width // side) * side,
                                       self.tile)

    def process(self, batch: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Float batches in [0, 1] come back as float32 in [0, 1]; uint8 ones (only ever
        ``__call__``'s own copy of a picture) are repainted in place unless shrunk first."""
        import torch

        from artgan import infer

        height, width = batch.shape[-2:]
        self._check_size(height, width)
        device = self.device
        out_dtype = infer.output_dtype(batch)
        if self.max_size and max(height, width) > self.max_size:
            scale = self.max_size / max(height, width)
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            batch = infer.resize(batch, size, device)
        out = infer.translate(
            self.network, batch, tile=self.tile, overlap=self.overlap, batch=self.batch,
            multiple=self.multiple, dtype=self.dtype, device=device, out_dtype=out_dtype,
            in_place=batch.dtype == torch.uint8, backend=self.backend,
        )
        return out if out_dtype == torch.uint8 else out.clamp_(0, 1)


class StyleTransferTask(Task):
    name = "style-transfer"
    description = "Repaint photos in a painter's style, or paintings as photos (CycleGAN)."
    default_model = "monet"

    def run_options(self) -> list[click.Parameter]:
        return [
            *super().run_options(),
            click.Option(["--style", "-s"], default=self.default_model, show_default=True,
                         help="Style model name, or a .safetensors path."),
            click.Option(["--reverse"], is_flag=True,
                         help="Go the other way: paintings to photos."),
            click.Option(["--max-size"], type=click.IntRange(min=1), metavar="PX",
                         help="Shrink pictures whose longer side is larger: brush strokes have "
                         "a fixed size in pixels, so smaller pictures look more painted "
                         "(default: keep the size)."),
            click.Option(["--tile"], type=click.IntRange(min=16), default=1024, show_default=True,
                         metavar="PX", help="Larger pictures run in tiles of this size "
                         "(less memory; seamless); with openvino, only those over 4 tiles' "
                         "area (it runs the others whole)."),
            click.Option(["--overlap"], type=click.IntRange(min=0), default=64, show_default=True,
                         metavar="PX", help="Overlap between tiles, blended smoothly."),
            click.Option(["--batch"], type=click.IntRange(min=1), default=1, show_default=True,
                         metavar="N", help="Tiles per pass (more: faster on GPUs, more memory)."),
            click.Option(["--device"], default="auto", show_default=True,
                         help="auto, cpu, cuda, cuda:N or mps."),
            backend_option(),
        ]

    def load(
        self,
        model: str | None = None,
        *,
        reverse: bool = False,
        device: str = "auto",
        tile: int = 1024,
        overlap: int = 64,
        batch: int = 1,
        max_size: int | None = None,
        backend: str = "auto",
    ) -> StylePipeline:
        """A pipeline for style ``model`` (name or path; None = ``monet``); ``reverse`` uses the
        painting -> photo generator; ``backend``: see ``artgan.backends.choose``."""
        backend, target = backends.choose(backend, device)
        info = store.find_task_model(model or self.default_model, self.name)
        direction = "b2a" if reverse else "a2b"
        key = backends.weights_key(info.path, direction) if backend == "openvino" else None
        # a conversion cached under the file's sha256 proves the file loaded before: only
        # then is it read when first needed; otherwise now, so a bad file is one error first
        networks = None
        if key is None or not backends.OpenVINOStyle.converted(key):
            networks = store.load_model(info.path, self.name, target).network
        architecture = info.metadata["architecture"]
        if architecture not in ARCHITECTURES:
            raise ArtganError(f"{info.path}: not a style model")
        if direction == "b2a" and architecture != ARCHITECTURE:
            raise ArtganError(f"{info.name}: trained one way ({architecture}), it "
                              "has no painting -> photo generator for --reverse")

        def generator() -> nn.Module:
            if key is not None and backends.weights_key(info.path, direction) != key:
                raise ArtganError(f"{info.path}: the file changed since the style was loaded; "
                                  "load it again")
            return store.load_model(info.path, self.name, target).network[direction]

        return StylePipeline(generator if networks is None else networks[direction], target,
                             name=info.name, tile=tile, overlap=overlap, batch=batch,
                             max_size=max_size, backend=backend, cache_key=key,
                             multiple=2 ** int(info.metadata["config"].get("n_down", 2)))

    def run(self, inputs: list[str], out: str | None = None, style: str | None = None,
            **options: Any) -> int:
        return super().run(inputs, out, model=style, **options)

    def train_options(self) -> list[click.Parameter]:
        from artgan.nn.blocks import PADDINGS, UPSAMPLING
        from artgan.train.driver import init_default_help, shared_options
        from artgan.train.options import (
            anchor_options,
            artefact_weight_option,
            d_warmup_option,
            validate_by_option,
        )

        # the CycleGAN paper's settings of the shared options
        shared = shared_options(self.name, {"lr_schedule": "linear"})
        return [
            click.Option(["--domain-a"], required=True, metavar="FOLDER",
                         help="Photos (or any source domain)."),
            click.Option(["--domain-b"], required=True, metavar="FOLDER",
                         help="Paintings of one style (the target domain)."),
            click.Option(["--name"], required=True, help="Name to save the style under."),
            click.Option(["--size"], type=click.IntRange(min=8), default=256, show_default=True,
                         help="Training crop size in pixels."),
            click.Option(["--load-size"], type=click.IntRange(min=8), metavar="PX",
                         help="Scale pictures to this shorter side, then cut --size crops "
                         "at that scale, so brushwork is learnt at the scale the model runs "
                         "at (default: crops cover most of each picture)."),
            click.Option(["--width"], type=click.IntRange(min=1),
                         help=init_default_help("Generator width; the paper's is 64",
                                                DEFAULT_CONFIG["width"])),
            click.Option(["--blocks"], type=click.IntRange(min=0),
                         help=init_default_help("Residual blocks per generator; the "
                                                "paper's are 9", DEFAULT_CONFIG["n_blocks"])),
            click.Option(["--upsample"], type=click.Choice(UPSAMPLING),
                         help=init_default_help("nearest: resize + conv, no checkerboard; "
                                                "transposed: the paper's",
                                                DEFAULT_CONFIG["upsample"])),
            click.Option(["--antialias/--no-antialias"], default=None,
                         help="Blur before every strided convolution (generator and "
                         "discriminator) and after each upsampling, so no period-2 mesh is "
                         "learnt; adds no weights, so an --init model without it can be "
                         "fine-tuned with it (default: as the --init model has it, else "
                         "off)."),
            click.Option(["--d-width"], type=click.IntRange(min=1), default=64, show_default=True,
                         help="Discriminator width."),
            click.Option(["--d-layers"], type=click.IntRange(min=1), default=3, show_default=True,
                         help="Discriminator strided layers (3: 70x70 patches)."),
            click.Option(["--d-padding"], type=click.Choice(PADDINGS), default="valid",
                         show_default=True, help="valid: D judges only whole patches inside the "
                         "picture, so it cannot reward stripes along the edges."),
            click.Option(["--method"], type=click.Choice(METHODS), default="cyclegan",
                         show_default=True,
                         help="cyclegan: two generators, both directions; cut: one "
                         "generator kept faithful by a contrastive patch loss (PatchNCE), "
                         "about half the time per step, photo -> painting only; "
                         "fastcut: CUT's lighter variant."),
            click.Option(["--nce-weight"], type=click.FloatRange(min=0), metavar="W",
                         help="cut/fastcut: weight of the PatchNCE term (the paper: 1 for "
                         "cut, 10 for fastcut)."),
            click.Option(["--cycle"], type=click.FloatRange(min=0), default=10.0,
                         show_default=True, help="cyclegan: cycle-consistency weight "
                         "(lambda)."),
            click.Option(["--identity"], type=click.FloatRange(min=0), default=5.0,
                         show_default=True, help="cyclegan: identity weight (the paper: "
                         "0.5 x lambda); keeps colours, 0 lets them drift."),
            artefact_weight_option("the generated crops'", "their sources'"),
            *anchor_options(),
            d_warmup_option(),
            click.Option(["--pool"], type=click.IntRange(min=0), default=50, show_default=True,
                         help="cyclegan: history pool of past fakes shown to the "
                         "discriminators."),
            click.Option(["--batch-size"], type=click.IntRange(min=1), default=1,
                         show_default=True, help="Picture pairs per step (the paper: 1)."),
            click.Option(["--lr"], type=click.FloatRange(min=0, min_open=True), default=2e-4,
                         show_default=True, help="Adam learning rate of all networks."),
            click.Option(["--holdout"], type=click.IntRange(min=0), default=0, show_default=True,
                         metavar="N", help="Leave out the last N pictures of --domain-a by name "
                         "(the quality benchmark's test set)."),
            click.Option(["--validate"], type=click.IntRange(min=0), default=0,
                         show_default=True, metavar="N",
                         help="Also leave out the N photos before the --holdout ones and, "
                         "every --validate-every steps, score them as --validate-by says; "
                         "the best-scoring step is exported."),
            validate_by_option("the photos'", "--domain-b", "the photos'",
                               "the stylized photos"),
            click.Option(["--init"], metavar="STYLE",
                         help="Start the generators from this style model (name or file) "
                         "instead of from scratch: fine-tuning, e.g. to a new painter; its "
                         "architecture is used (--width, --blocks, --upsample must match "
                         "or be left out). cut/fastcut fine-tune its photo -> painting "
                         "generator and keep its painting -> photo one unchanged (unless "
                         "--antialias changes the generators); cyclegan needs a cyclegan "
                         "model."),
            click.Option(["--workers"], type=click.IntRange(min=0), default=0, show_default=True,
                         help="Data loading processes (pictures are cached in memory)."),
            click.Option(["--out"], help="Model file (default: the user model folder/NAME)."),
            *shared,
        ]

    def train(self, **options: Any) -> Path:
        from artgan.train.driver import prepare

        from .training import train_style

        run = prepare(self.name, self.train_options(), options)
        options = run.options
        # shape options left out are None: the --init model's, else the defaults (a value
        # given is checked against the model even where it equals the default)
        shape = {"width": options["width"], "n_blocks": options["blocks"],
                 "upsample": options["upsample"]}
        generator = {**DEFAULT_CONFIG, **{k: v for k, v in shape.items() if v is not None}}
        init = None
        if options["init"]:
            start = store.load_model(options["init"], self.name)
            for key, option in (("width", "width"), ("n_blocks", "blocks"),
                                ("upsample", "upsample")):
                given = options[option]
                if given is not None and given != start.config.get(key):
                    raise ArtganError(
                        f"--{option} {given}: --init {options['init']} has "
                        f"{option} {start.config.get(key)}; leave --{option} out"
                    )
            if options["method"] == "cyclegan" and "b2a" not in start.network:
                raise ArtganError(f"--init {options['init']}: trained one way, it has no "
                                  "painting -> photo generator for --method cyclegan")
            generator = dict(start.config)
            init = start.network.state_dict()
        if options["anchor_weight"] and (init is None or options["method"] == "cyclegan"):
            raise ArtganError("--anchor-weight needs --init and --method cut or fastcut")
        if options["antialias"] is not None:
            generator["antialias"] = options["antialias"]
        module_options = {
            "d_width": options["d_width"], "d_layers": options["d_layers"],
            "d_padding": options["d_padding"], "lr": options["lr"],
            "d_antialias": bool(generator.get("antialias")),
            "artefact_weight": options["artefact_weight"],
            "d_warmup": options["d_warmup"],
        }
        if options["method"] == "cyclegan":
            module_options.update(cycle_weight=options["cycle"],
                                  identity_weight=options["identity"], pool_size=options["pool"])
        else:
            # a CycleGAN style fine-tuned one way keeps its other direction, where the
            # generators' shape (the blur included) is the model's own
            keep_reverse = init is not None and "b2a" in start.network and \
                generator == dict(start.config)
            module_options.update(method=options["method"], nce_weight=options["nce_weight"],
                                  anchor_weight=options["anchor_weight"],
                                  anchor_blur=options["anchor_blur"],
                                  keep_reverse=keep_reverse)
        return train_style(
            options["method"], options["domain_a"], options["domain_b"], run.out, run.config,
            size=options["size"], load_size=options["load_size"], generator=generator,
            module_options=module_options, batch_size=options["batch_size"],
            workers=options["workers"], holdout=options["holdout"],
            validate=options["validate"], init=init, init_name=options["init"],
            validate_by=options["validate_by"],
        )
