"""The ``restore`` task: its CLI, its pipeline and the ``restore()`` Python call.

Unlike other tasks, a result here is only as good as what it leaves alone: output pixels
outside the (dilated) mask are the input's own, bit for bit; an empty mask writes nothing
(there is nothing to restore, and a copy would only waste space); and an unreadable input,
mask or model stops with one line saying which and why.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from artgan import ArtganError, Pipeline, Task
from artgan.batch import check_distinct, output_paths, process_files
from artgan.imageio import IMAGE_EXTENSIONS, find_images, read_image, write_image
from artgan.task import backend_option
from artgan_restore.model import TASK
from artgan_restore.policy import DEFAULT_DILATE, MAX_SHARE, REACH

if TYPE_CHECKING:  # torch and the networks are imported when a model loads, not with the CLI
    import torch

    from artgan_restore.restorer import Restorer

SHIPPED_MODEL = "general"
LOSSY = (".jpg", ".jpeg", ".webp")


class RestoreWarning(UserWarning):
    """Automatic restoration left a picture alone because it looked undamaged."""


class RestorePipeline(Pipeline):
    """``pipeline(image, mask=None, return_mask=False, force=False)`` on PIL images, numpy
    arrays or tensors; returns the same kind (and the mask used, as a bool array/tensor or an
    "L" image).

    Without a mask, a detection that reaches more than ``MAX_SHARE`` of a picture raises
    ``RestoreRefusedError``, and a picture that looks undamaged comes back unchanged with a
    ``RestoreWarning``; ``force=True`` repaints whatever was detected.
    """

    def __init__(self, restorer: Restorer, force: bool = False):
        self.restorer = restorer
        self.device = restorer.device
        self.force = force

    def __call__(self, image: Any, mask: Any = None, return_mask: bool = False,
                 force: bool | None = None) -> Any:
        from artgan.convert import to_batch
        from artgan_restore.restorer import as_mask

        batch, back = to_batch(image)
        masks = None if mask is None else as_mask(mask)
        restored, used = self._run(batch, masks, self.force if force is None else force)
        result = back(restored)
        return (result, _mask_like(used, image)) if return_mask else result

    def process(self, batch: torch.Tensor, mask: Any = None) -> torch.Tensor:
        from artgan_restore.restorer import as_mask

        return self._run(batch.cpu(), None if mask is None else as_mask(mask), self.force)[0]

    def _run(self, batch: torch.Tensor, mask: torch.Tensor | None,
             force: bool) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        from artgan_restore.restorer import RestoreRefusedError

        outputs, masks = [], []
        for picture in batch.float().cpu():
            try:
                restored, used = self.restorer.restore(picture, mask, force=force)
            except RestoreRefusedError as refused:
                if not refused.undamaged:
                    raise
                warnings.warn(f"{refused}", RestoreWarning, stacklevel=4)
                restored, used = picture, torch.zeros(picture.shape[-2:], dtype=torch.bool)
            outputs.append(restored)
            masks.append(used)
        return torch.stack(outputs), torch.stack(masks)


def _mask_like(masks: torch.Tensor, image: Any) -> Any:
    """The mask(s) in the kind of the user's image: "L" image, bool array or bool tensor."""
    import torch
    from PIL import Image

    single = masks[0] if masks.shape[0] == 1 else masks
    if isinstance(image, Image.Image):
        return mask_image(single)
    if isinstance(image, torch.Tensor):
        return single.to(image.device)
    return single.numpy()


class RestoreTask(Task):
    """Detect damage (or take a mask) and inpaint it, window by window."""

    name = TASK
    description = "Find and repaint scratches, cracks, holes and stains in paintings and photos."
    default_model = SHIPPED_MODEL

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Restorer] = {}

    def output_suffixes(self) -> tuple[str, ...]:
        return ("restored", "mask")  # restored pictures and detect-only masks

    def run_options(self) -> list[click.Parameter]:
        return [
            *self.file_options(),
            click.Option(["--mask", "-m"],
                         help="Mask image (white = repaint) for every input, or a folder of "
                              "masks named like the inputs; default: detect the damage."),
            click.Option(["--save-mask"], is_flag=True,
                         help="Also write the mask used, as <name>.mask.png beside the output."),
            click.Option(["--detect-only"], is_flag=True,
                         help="Only detect: write the damage mask (<name>.mask.png), no repair."),
            click.Option(["--threshold"], type=click.FloatRange(0, 1, min_open=True,
                                                                max_open=True),
                         help="Detector probability above which a pixel counts as damaged "
                              "and is repainted (default: the model's, calibrated on clean "
                              "pictures)."),
            click.Option(["--force"], is_flag=True,
                         help=f"Repaint what detection found even when it reaches more "
                              f"than {MAX_SHARE:.0%} of a picture (all it suspects, at any "
                              f"--threshold, and {REACH} px around) or the picture looks "
                              "undamaged (by default those are left alone)."),
            click.Option(["--dilate"], type=click.IntRange(min=0),
                         help=f"Grow the mask by this many pixels (default: {DEFAULT_DILATE}; "
                              "each pixel added hides picture from the inpainter)."),
            click.Option(["--remove"], is_flag=True,
                         help="The --mask marks something to take out (an object, a "
                              "signature, a label), not damage: paint it over without "
                              "reading what lies under it."),
            click.Option(["--model"], help="Model name or .safetensors path."),
            click.Option(["--device"], default="auto", show_default=True,
                         help="auto, cpu, cuda or cuda:N."),
            # torch by default: the shipped thresholds were calibrated on torch's output
            backend_option("torch", "the detector"),
        ]

    def train_options(self) -> list[click.Parameter]:
        from artgan_restore.training import restore_train_options

        return restore_train_options()

    def train(self, **options: Any) -> Path:
        from artgan.train.driver import prepare
        from artgan_restore.training import train

        run = prepare(self.name, self.train_options(), options)
        return train(run, **run.options)

    def load(self, model: str | None = None, *, force: bool = False, device: str | None = None,
             threshold: float | None = None, dilate: int | None = None, remove: bool = False,
             backend: str = "torch") -> RestorePipeline:
        """A pipeline for ``model``. ``remove=True`` (with a mask) paints over what the mask
        covers without reading it; ``force=True`` repaints a detection the safety net would
        refuse (see ``RestorePipeline``); ``threshold`` None: the model's own; ``backend``:
        what runs the detector (see ``Restorer.load``)."""
        return RestorePipeline(self.restorer(model, device, threshold, dilate, remove,
                                             backend), force)

    def restorer(self, model: str | None = None, device: str | None = None,
                 threshold: float | None = None, dilate: int | None = None,
                 remove: bool = False, backend: str = "torch",
                 detect_only: bool = False) -> Restorer:
        """The model loaded once per (model, device, backend, whether the inpainter is left
        in torch: ``detect_only`` on another backend); the other options set per call
        (``threshold`` None: the model's own)."""
        from artgan_restore.restorer import Restorer

        detect_only = detect_only and backend != "torch"
        key = (str(model if model is not None else self.default_model), str(device), backend,
               detect_only)
        if key not in self._loaded:
            self._loaded[key] = Restorer.load(model if model is not None else self.default_model,
                                              device, backend, detect_only)
        loaded = self._loaded[key]
        return Restorer(loaded.networks, loaded.size, loaded.device,
                        loaded.threshold if threshold is None else threshold, dilate,
                        loaded.name, remove, loaded.sure)

    def run(self, inputs: list[str], out: str | None = None, mask: str | None = None,
            save_mask: bool = False, detect_only: bool = False, threshold: float | None = None,
            dilate: int | None = None, model: str | None = None, device: str = "auto",
            remove: bool = False, force: bool = False, backend: str = "torch", **_: Any) -> int:
        """Restore (or only detect damage in) image files; returns the exit code."""
        if remove and mask is None:
            raise ArtganError("--remove needs --mask: it says what to take out")
        pairs = output_paths(inputs, out, suffix="mask" if detect_only else "restored")
        into_file = out is not None and len(pairs) == 1 and pairs[0][1] == Path(out)
        if detect_only and not into_file:  # <name>.mask.png, beside the input or in --out
            pairs = [(source, target.with_name(f"{source.stem}.mask.png"))
                     for source, target in pairs]
            check_distinct(pairs)  # photo.png and photo.jpg now share a mask name
        if save_mask and not detect_only:
            check_distinct([*pairs, *((source, _mask_path(source, target))
                                      for source, target in pairs)])
        masks = _MaskSource(mask, inputs) if mask is not None else None
        restorer = self.restorer(model, device, threshold, dilate, remove, backend, detect_only)
        # never written over: the pictures and the user's own masks
        protected = [source for source, _ in pairs] + (masks.files() if masks else [])
        if save_mask and not detect_only:  # refuse before anything is written
            kept = {path.resolve() for path in protected}
            for source, target in pairs:
                if _mask_path(source, target).resolve() in kept:
                    raise ArtganError(f"--save-mask would write over {_mask_path(source, target)}"
                                      ", an input; give --out another folder")

        def handle(source: Path, target: Path, kept: list[Path]) -> str:
            return self._one(restorer, source, target, masks, save_mask, detect_only, kept,
                             force, into_file)

        return process_files(pairs, handle, out, protected=masks.files() if masks else (),
                             progress=False)

    def _one(self, restorer: Restorer, source: Path, target: Path, masks: _MaskSource | None,
             save_mask: bool, detect_only: bool, protected: list[Path], force: bool,
             into_file: bool) -> str:
        """Restore one picture; returns which count it adds to. With ``into_file`` (``-o``
        names one output file) a picture left as it is is still written there, unchanged,
        so a script can rely on the file."""
        from artgan.convert import pil_to_uint8, uint8_to_pil

        picture = read_image(source)
        pixels = pil_to_uint8(picture.rgb)
        given = masks.mask_for(source) if masks is not None else None
        opaque = None
        if given is None:
            finding = restorer.find(pixels)
            used, opaque = finding.mask, finding.opaque
        else:
            used = restorer.prepare_mask(given, pixels)
        if detect_only:
            write_image(mask_image(used), target, inputs=protected)
            share = float(used.float().mean())
            note = f" ({finding.verdict})" if given is None and finding.verdict else ""
            print(f"{source}: damage on {share:.2%} of the picture{note}; mask written to "
                  f"{target}", file=sys.stderr)
            return "written"
        if not bool(used.any()):
            why = "the mask is empty" if given is not None else "no damage found"
            kept = _unchanged(picture, target, into_file, protected)
            print(f"{source}: nothing to restore ({why}); {kept}", file=sys.stderr)
            return "nothing"
        if given is None and finding.verdict and not force:
            kept = ("nothing written" if finding.too_much else
                    _unchanged(picture, target, into_file, protected))
            print(f"{source}: {finding.verdict}; nothing repainted ({kept}). Look first with "
                  "--detect-only (and pass an edited mask with --mask), or repaint anyway "
                  "with --force", file=sys.stderr)
            return "refused" if finding.too_much else "nothing"
        restored = restorer.inpaint(pixels, used, opaque)
        write_image(uint8_to_pil(restored), target, alpha=picture.alpha, inputs=protected)
        if save_mask:
            write_image(mask_image(used), _mask_path(source, target), inputs=protected)
        print(f"{source}: repainted {float(used.float().mean()):.2%} of the picture -> {target}",
              file=sys.stderr)
        if target.suffix.lower() in LOSSY:
            print(f"note: {target.suffix} is lossy and re-encodes every pixel; write .png or "
                  ".tif to keep pixels outside the mask bit-identical", file=sys.stderr)
        return "written"


def _unchanged(picture, target: Path, into_file: bool, protected: list[Path]) -> str:
    """Write the picture unchanged to an ``-o`` file (none otherwise); says what was done."""
    if not into_file:
        return "nothing written"
    write_image(picture.rgb, target, alpha=picture.alpha, inputs=protected)
    return f"an unchanged copy written to {target}"


def _mask_path(source: Path, target: Path) -> Path:
    """Where ``--save-mask`` writes the mask used: ``<name>.mask.png`` beside the output."""
    return target.with_name(f"{source.stem}.mask.png")


def mask_image(mask: torch.Tensor):
    """A bool (H, W) mask as the black and white "L" picture artgan writes masks as."""
    from PIL import Image

    return Image.fromarray(mask.numpy().astype("uint8") * 255, "L")


class _MaskSource:
    """``--mask``: one mask file for every input, or a folder with a mask per input
    (same relative path and name, any image extension)."""

    def __init__(self, mask: str, inputs: list[str]):
        from artgan_restore.restorer import read_mask

        self.path = Path(mask)
        self.single: torch.Tensor | None = None
        if self.path.is_dir():
            self.relative = {source.resolve(): relative for source, relative in find_images(inputs)}
        elif self.path.exists():
            self.single = read_mask(self.path)
        else:
            raise ArtganError(f"--mask {mask}: no such file or folder")

    def files(self) -> list[Path]:
        """Every mask file this source may read (so that none is written over)."""
        if self.single is not None:
            return [self.path]
        return [path for path, _ in find_images([str(self.path)])]

    def mask_for(self, source: Path) -> torch.Tensor:
        from artgan_restore.restorer import read_mask

        if self.single is not None:
            return self.single
        relative = self.relative.get(source.resolve(), Path(source.name))
        for extension in IMAGE_EXTENSIONS:
            candidate = (self.path / relative).with_suffix(extension)
            if candidate.is_file():
                return read_mask(candidate)
        raise ArtganError(f"{source}: no mask for it in {self.path}")
