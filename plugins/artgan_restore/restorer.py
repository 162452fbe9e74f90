"""Find and repaint damage on one picture of any size, touching nothing else.

Pictures stay in their own dtype (uint8 from files) on the CPU; only a detector tile or a
batch of inpainter windows at a time is converted to float on the device. Results are
written back pixel by pixel inside the mask, so every pixel outside it is bit-identical to
the input.

Automatic restoration must never ruin a clean picture, so a detection is judged before
anything is repainted (``Finding.verdict``): one that reaches more than ``MAX_SHARE`` of
the picture (all it suspects and ``REACH`` px around, whatever the threshold;
``MAX_CERTAIN_SHARE`` where the detector is certain of most of it), or that the detector
is not sure of anywhere, is not repainted unless forced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from artgan import ArtganError, backends
from artgan.convert import from_float, to_float
from artgan.imageio import ImageError, read_image
from artgan.infer import autocast_dtype
from artgan.nn.openvino import OpenVINONetwork
from artgan.store import load_model
from artgan_restore.components import whole_losses
from artgan_restore.detector import SURE, detect_maps, dilate, keep_connected
from artgan_restore.model import TASK
from artgan_restore.policy import (
    CERTAIN_SHARE,
    DEFAULT_DILATE,
    MAX_CERTAIN_SHARE,
    MAX_SHARE,
    MIN_SURE_PIXELS,
    MIN_SURE_SHARE,
    REACH,
    SUSPECT,
)
from artgan_restore.windows import Plan, Window, plan_windows

OPAQUE_GROW = 2
"""px by which the opaque part of a given mask grows within it: the opacity output stops
short of a loss's rim, where reading the half-covered pixels bleeds the loss's colour into
the fill (on validation pictures, 2 px brings the default mode level with ``--remove`` on
holes and losses and costs stains 0.05 dB)."""
DEFAULT_THRESHOLD = 0.5  # for models whose card names no calibrated threshold
MIN_SIDE = 16  # px: smaller pictures hold too little for the detector or the inpainter
MARGIN = 1 / 8  # share of the window given to context on each side of its core
# windows run as one batch, at most this many model-size windows of pixels: on a CPU a
# batch of 16 costs 40 % less per window than one at a time (8, 32 and 64: no better)
BATCH_WINDOWS = 16


class RestoreRefusedError(ArtganError):
    """Automatic restoration declined to repaint: ``finding`` says what was detected."""

    def __init__(self, message: str, finding: Finding):
        super().__init__(message)
        self.finding = finding

    @property
    def undamaged(self) -> bool:
        """The picture looked undamaged (rather than too much of it marked)."""
        return not self.finding.too_much


@dataclass
class Finding:
    """A detection and how much to trust it: ``mask`` (H, W) bool, grown by the dilation,
    is what would be repainted; ``opaque`` the part of it that hides the picture;
    ``marked`` the share of the picture the detector marked (before dilation); ``suspects``
    all it suspects of the same detection (above ``SUSPECT``: the safety net judges these,
    whatever the threshold), ``reach`` the share within ``REACH`` px of a suspect, ``sure``
    the number of pixels it is sure of, and ``certain`` the number of suspects it is
    certain of (``CERTAIN``)."""

    mask: Tensor
    opaque: Tensor
    marks: Tensor  # the detection before dilation
    suspects: Tensor  # what the safety net judges: the detection down to SUSPECT
    sure: int
    certain: int = 0

    @property
    def marked(self) -> float:
        """The share of the picture the detector marked, before dilation."""
        return float(self.marks.float().mean())

    @property
    def share(self) -> float:
        """The share of the picture that would be repainted."""
        return float(self.mask.float().mean())

    @cached_property
    def reach(self) -> float:
        """The share of the picture within ``REACH`` px of what the detector suspects."""
        return float(dilate(self.suspects, REACH).float().mean())

    @cached_property
    def certainty(self) -> float:
        """The share of the suspected pixels the detector is certain of."""
        suspected = int(self.suspects.sum())
        return self.certain / suspected if suspected else 0.0

    @property
    def bound(self) -> float:
        """The most of the picture this detection may reach and repaint unasked."""
        return MAX_CERTAIN_SHARE if self.certainty >= CERTAIN_SHARE else MAX_SHARE

    @property
    def too_much(self) -> bool:
        return max(self.share, self.reach) > self.bound

    @property
    def verdict(self) -> str | None:
        """Why not to repaint this detection unasked, or None when it can be."""
        if not bool(self.mask.any()):
            return None
        if self.too_much:
            grown = (f" and would repaint {self.share:.1%}" if self.share > self.reach
                     else "")
            return (f"detection marked {self.marked:.1%} of the picture, reaches "
                    f"{self.reach:.1%} (what it suspects and {REACH} px around){grown}: "
                    f"more than the {self.bound:.0%} artgan repaints unasked")
        if self.sure < max(MIN_SURE_PIXELS, MIN_SURE_SHARE * self.mask.numel()):
            return (f"the picture looks undamaged: detection marked {self.marked:.2%} of it "
                    f"but is sure of none")
        return None


@dataclass
class Restorer:
    """A loaded detector + inpainter pair and how to run them."""

    networks: nn.ModuleDict
    size: int
    device: torch.device
    threshold: float = DEFAULT_THRESHOLD
    dilate: int | None = None
    name: str = "restore"
    remove: bool = False  # the mask covers something to take out, not damage: see ``inpaint``
    sure: float = SURE  # a detection is kept only where part of it is this probable

    @classmethod
    def load(cls, model: str | os.PathLike | None, device: str | None = None,
             backend: str = "torch", detect_only: bool = False, **options: Any) -> Restorer:
        """Load a restore model by name or path onto ``device`` (None/"auto": CUDA if any).
        ``backend`` ``openvino`` (or ``auto`` with it installed, on the CPU) runs both
        networks there (see ``artgan.backends.choose``): the detector 2.3x faster than torch
        in issue 21's probe, the inpainter 1.25x (16 windows of 128 px, one thread of an
        AMD EPYC with AVX-512-BF16, both in bf16: 0.41 s against 0.51 s); and on a busy CPU
        eager torch's many small operations wait on each other where a compiled graph hardly
        does (a 4000x3000 scan's inpainting, 2 threads, three other jobs on the 2 cores: 80 s
        in torch, 6 s in OpenVINO). With ``detect_only`` the inpainter, never run, is left in
        torch: neither converted nor compiled."""
        backend, name = backends.choose(backend, device or "auto")
        target = torch.device(name)
        loaded = load_model(model, TASK, target)
        if not isinstance(loaded.network, nn.ModuleDict) or set(loaded.network) != {
                "detector", "inpainter"}:
            raise ArtganError(f"{loaded.info.path}: not a restore model (it holds no detector "
                              "and inpainter)")
        size = int(loaded.config.get("size", 256))
        if backend == "openvino":
            side = 2 * loaded.network["detector"].multiple
            examples = {"detector": [torch.rand(2, 3, side, side)],
                        "inpainter": [torch.rand(2, 3, size, size),
                                      (torch.rand(2, 1, size, size) > 0.8).float()]}
            if detect_only:
                del examples["inpainter"]
            loaded.network.update({
                name: OpenVINONetwork(
                    loaded.network[name].eval(),
                    backends.weights_key(loaded.info.path, name), example)
                for name, example in examples.items()})
        if options.get("threshold") is None:
            options["threshold"] = model_threshold(loaded.info.card)
        if options.get("sure") is None:
            options["sure"] = model_threshold(loaded.info.card, "sure", SURE)
        return cls(loaded.network, size, target, name=loaded.info.name, **options)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ArtganError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.dilate is not None and self.dilate < 0:
            raise ArtganError(f"--dilate must be 0 or more pixels, got {self.dilate}")
        # channels-last convolutions are faster on CPUs (oneDNN) and on tensor-core GPUs
        self.networks.eval().to(memory_format=torch.channels_last)

    def find(self, image: Tensor) -> Finding:
        """Detect the damage in a (3, H, W) picture: what the detector marks above the
        threshold where it is sure of part of it (``marks``), dilated; its opaque part; all
        it suspects of the same detection (``suspects``); and how sure the detector is."""
        _check_size(image)
        maps = detect_maps(self.networks["detector"], image, self.threshold, sure=self.sure,
                           suspect=SUSPECT)
        marks = keep_connected(maps.damage, maps.sure)
        suspects = keep_connected(maps.suspect, maps.sure)
        grow = DEFAULT_DILATE if self.dilate is None else self.dilate
        mask = dilate(marks, grow)
        return Finding(mask, _opaque_within(marks & maps.hides, mask, grow), marks, suspects,
                       int(maps.sure.sum()), int((suspects & maps.certain).sum()))

    def opaque(self, image: Tensor, mask: Tensor) -> Tensor:
        """The pixels of a given ``mask`` that hide the picture, by the detector's opacity
        output grown by ``OPAQUE_GROW`` within the mask and its losses whole
        (``_opaque_within``); none for a detector without opacity. The detector runs only
        on the tiles the mask needs, and without second looks: they settle whether a
        doubtful pixel is damaged, which a given mask already says (``quality_restore.py``,
        the true mask: PSNR inside it within 0.14 dB of the looks', most figures within
        0.04 dB; ``bench_restore.py``'s ``--mask`` scan, one thread: 7.1 -> 4.6 s)."""
        detector = self.networks["detector"] if "detector" in self.networks else None
        if getattr(detector, "outputs", 1) < 2 or not bool(mask.any()):
            return torch.zeros_like(mask)
        _check_size(image)
        hides = detect_maps(detector, image, self.threshold, within=mask, looks=False).hides & mask
        return _opaque_within(hides, mask, OPAQUE_GROW)

    def prepare_mask(self, mask: Tensor, image: Tensor) -> Tensor:
        """Check a user mask against its picture and apply ``dilate`` (default none)."""
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise ArtganError(
                f"the mask is {mask.shape[-1]}x{mask.shape[-2]} but the image is "
                f"{image.shape[-1]}x{image.shape[-2]}; they must be the same size"
            )
        return dilate(mask.bool(), self.dilate or 0)

    def plan(self, mask: Tensor) -> Plan:
        """The inpainting windows for a (H, W) bool mask."""
        return plan_windows(mask, self.size, round(self.size * MARGIN))

    @torch.inference_mode()
    def inpaint(self, image: Tensor, mask: Tensor, opaque: Tensor | None = None) -> Tensor:
        """Repaint the pixels of ``mask`` in a (3, H, W) picture; a new picture, same dtype.

        The inpainter reads what still shows under the mask (stains and thin cracks leave
        the painting visible), except where it is ``opaque`` (default: as the detector's
        opacity output says): those pixels, like the whole mask with ``remove``, are first
        covered with one flat colour (the mean of the rest of the picture), as half of the
        training holes were covered with a flat random colour, so nothing under them (a
        plaster loss, an object, a signature) shows through into the result.
        """
        if bool(mask.all()):
            raise ArtganError(
                "the mask covers the whole picture: nothing is left to restore from"
            )
        _check_size(image)
        plan = self.plan(mask)
        out = image.clone()
        if self.remove:
            opaque = mask
        elif opaque is None:
            opaque = self.opaque(image, mask)
        if bool(opaque.any()):
            out[:, opaque] = from_float(_mean_outside(image, mask), image.dtype)
        remaining = mask.clone()
        # the windows' input where they repaint earlier fills; one window repaints none
        before = out.clone() if len(plan.windows) > 1 else out
        for group in plan.batches(BATCH_WINDOWS * self.size**2):
            self._fill(group, plan, out, before, mask, remaining)
        return out

    def _fill(self, windows: list[Window], plan: Plan, out: Tensor, before: Tensor,
              mask: Tensor, remaining: Tensor) -> None:
        """Run one group of windows (same scale and shape, no overlaps) as a batch: each
        reads ``out``, except where it repaints an earlier fill, there ``before`` (what
        was under the mask, as if that fill had not been made)."""
        height, width = windows[0].shape
        scale = windows[0].scale
        crops = [(slice(w.top, w.bottom), slice(w.left, w.right)) for w in windows]
        seams = [self._seam(w, plan, mask, remaining) for w in windows]
        m = torch.stack([remaining[rows, cols] | repaint
                         for (rows, cols), (repaint, _) in zip(crops, seams, strict=True)])[:, None]
        x = to_float(torch.stack([torch.where(hole, before[:, rows, cols], out[:, rows, cols])
                                  for (rows, cols), hole in zip(crops, m[:, 0], strict=True)]))
        x, m = x.to(self.device), m.to(self.device, torch.float32)
        if scale > 1:
            small = (max(1, round(height / scale)), max(1, round(width / scale)))
            x = F.interpolate(x, size=small, mode="area")
            m = F.adaptive_max_pool2d(m, small)
        prediction = self._predict(x, m)
        if scale > 1:
            prediction = F.interpolate(prediction, size=(height, width), mode="bilinear",
                                       align_corners=False).clamp(0, 1)
        for window, predicted, seam in zip(windows, prediction.float().cpu(), seams,
                                           strict=True):
            self._write(window, plan, predicted, seam, out, remaining)

    def _seam(self, window: Window, plan: Plan, mask: Tensor,
              remaining: Tensor) -> tuple[Tensor, Tensor]:
        """Over the window's crop: which earlier fills it repaints (bool), and how much of
        each to keep (float, 1 for all but those near its core).

        A window reads the fills of earlier windows as picture, so where a hole spans two
        cores the later window meets a straight edge between picture and hole, which its
        training never showed: it paints a band a few pixels wide along it (a faint line
        across a large fill, visible at 100 %). So it repaints the earlier fills within its
        margin too, its edge moving out to the margin's outer edge, and its fill and the
        earlier one are cross-faded over the inner half of the margin (all its own at its
        core, all the earlier one's from the middle of the margin out, where its own edge
        band lies)."""
        top, left, bottom, right = window.top, window.left, window.bottom, window.right
        fade = round(self.size * MARGIN) * window.scale
        distance = window.core_distance()
        repaint = mask[top:bottom, left:right] & ~remaining[top:bottom, left:right]
        repaint &= (distance > 0) & (distance <= fade)
        repaint &= plan.scale_of(top, left, bottom, right) == window.scale
        kept = (distance.float() / (fade // 2 + 1)).clamp(max=1.0)
        return repaint, kept

    @staticmethod
    def _write(window: Window, plan: Plan, predicted: Tensor, seam: tuple[Tensor, Tensor],
               out: Tensor, remaining: Tensor) -> None:
        """Copy a window's prediction into ``out`` where its core still has damage of its
        scale, and mark those pixels done; cross-fade it with the earlier fills it
        repaints (``_seam``)."""
        top, left, bottom, right = window.top, window.left, window.bottom, window.right
        core_top, core_left, core_bottom, core_right = window.core
        hole = remaining[top:bottom, left:right]
        write = torch.zeros(window.shape, dtype=torch.bool)
        inside = (slice(core_top - top, core_bottom - top),
                  slice(core_left - left, core_right - left))
        same_scale = plan.scale_of(core_top, core_left, core_bottom, core_right) == window.scale
        write[inside] = hole[inside] & same_scale
        region = out[:, top:bottom, left:right]
        region[:, write] = from_float(predicted[:, write], out.dtype)
        hole[write] = False
        repaint, kept = seam
        if bool(repaint.any()):
            share = kept[repaint]
            region[:, repaint] = from_float(share * to_float(region[:, repaint])
                                            + (1 - share) * predicted[:, repaint], out.dtype)

    def _predict(self, image: Tensor, mask: Tensor) -> Tensor:
        """Inpainter output for (N, 3, h, w) crops, padded to the network's multiple."""
        inpainter = self.networks["inpainter"]
        height, width = image.shape[-2:]
        multiple = inpainter.multiple
        pads = (0, -width % multiple, 0, -height % multiple)
        if any(pads):
            mode = "reflect" if max(pads) < min(height, width) else "replicate"
            image, mask = F.pad(image, pads, mode=mode), F.pad(mask, pads, mode=mode)
        dtype = autocast_dtype(self.device)
        with torch.autocast(self.device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            prediction = inpainter(image, mask)
        return prediction[..., :height, :width].float()

    def restore(self, image: Tensor, mask: Tensor | None = None,
                force: bool = False) -> tuple[Tensor, Tensor]:
        """``(restored, mask used)`` for a (3, H, W) picture; the mask is detected when not
        given (except with ``remove``: what to take out only the user knows). An empty mask
        returns the picture itself. A detection with a ``Finding.verdict`` against it
        raises ``RestoreRefusedError`` unless ``force``."""
        if self.remove and mask is None:
            raise ArtganError("removing needs a mask of what to take out")
        opaque = None
        if mask is None:
            finding = self.find(image)
            if finding.verdict and not force:
                raise RestoreRefusedError(
                    f"{finding.verdict}; nothing repainted. Look at the mask first "
                    "(return_mask=True with force=True, or artgan restore --detect-only), "
                    "or pass force=True to repaint anyway", finding)
            mask, opaque = finding.mask, finding.opaque
        else:
            mask = self.prepare_mask(mask, image)
        if not bool(mask.any()):
            return image, mask
        return self.inpaint(image, mask, opaque), mask


def model_threshold(card: dict[str, Any], key: str = "threshold",
                    default: float = DEFAULT_THRESHOLD) -> float:
    """A detector threshold a model's card names (``threshold``, ``sure``: calibrated on
    held-out clean pictures for a false-alarm budget), else ``default``."""
    value = card.get(key) if isinstance(card, dict) else None
    if isinstance(value, (int, float)) and 0.0 < value < 1.0:
        return float(value)
    return default


def _opaque_within(hides: Tensor, mask: Tensor, grow: int) -> Tensor:
    """The part of ``mask`` to cover before inpainting: the detector's opaque pixels
    ``hides`` grown by ``grow`` within it, and each part of it that is a loss as a whole
    (``components.whole_losses``, judged on ``hides`` before growing, so one opaque speck
    does not cover a small stain)."""
    return whole_losses(hides, mask) | (dilate(hides, grow) & mask)


def _check_size(image: Tensor) -> None:
    height, width = image.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise ArtganError(f"the picture is {width}x{height} px; restore needs at least "
                          f"{MIN_SIDE} px on each side")


def _mean_outside(image: Tensor, mask: Tensor, band: int = 512) -> Tensor:
    """(3, 1) mean colour in [0, 1] of the pixels outside ``mask``, summed in bands of rows
    so a large scan is never copied whole into floats."""
    total = torch.zeros(image.shape[0], dtype=torch.float64)
    for top in range(0, image.shape[1], band):
        part = to_float(image[:, top:top + band]).masked_fill_(mask[top:top + band], 0)
        # rows summed in float32, the row sums in float64: summing a float32 band straight
        # into float64 converts every value on the way (2.5x the time on a 12 MP scan)
        total += part.sum(dim=2).sum(dim=1, dtype=torch.float64)
    return (total / max(1, int((~mask).sum()))).float().view(-1, 1)


# --- pictures and masks from files and Python objects ---------------------------------------


def read_mask(path: str | os.PathLike) -> Tensor:
    """A mask file as (H, W) bool: white (> 127) marks pixels to repaint; transparent
    pixels of a mask with alpha count as black."""
    try:
        picture = read_image(path)
    except ImageError as exc:
        raise ArtganError(f"mask {exc}") from None
    mask = _mask_from_pil(picture.rgb)
    if picture.alpha is not None:
        mask &= torch.from_numpy(np.asarray(picture.alpha) > 127)
    return mask


def _mask_from_pil(image: Image.Image) -> Tensor:
    rgb, alpha = image, None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        rgb, alpha = rgba.convert("RGB"), np.asarray(rgba.getchannel("A")) > 127
    mask = np.asarray(rgb.convert("L")) > 127
    if alpha is not None:
        mask &= alpha
    return torch.from_numpy(mask.copy())


def as_mask(mask: Any) -> Tensor:
    """A user's mask as (H, W) bool: a file path, a PIL image, a numpy array or a tensor
    (bool; uint8 > 127; float > 0.5; a channel axis of size 1, 3 or 4 is reduced)."""
    if isinstance(mask, (str, os.PathLike)):
        return read_mask(mask)
    if isinstance(mask, Image.Image):
        return _mask_from_pil(mask)
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, Tensor):
        raise ArtganError(
            f"cannot use a {type(mask).__name__} as a mask; pass a path, a PIL image, "
            "a numpy array or a tensor"
        )
    mask = mask.detach().cpu()
    while mask.dim() > 2 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.dim() == 3 and mask.shape[0] in (3, 4):
        mask = mask[:3].amax(dim=0)
    elif mask.dim() == 3 and mask.shape[-1] in (1, 3, 4):
        mask = mask[..., :3].amax(dim=-1)
    if mask.dim() != 2:
        raise ArtganError(f"a mask must be HxW (or with one channel axis), got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    if mask.dtype == torch.uint8:
        return mask > 127
    return mask.float() > 0.5
