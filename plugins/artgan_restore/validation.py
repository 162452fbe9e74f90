"""Scoring the network that trains on held-out paintings, to export its best step.

GAN training does not improve steadily, so a run fine-tuning one network of a restore
model (``--only``) scores it every ``--validate-every`` steps the way
``benchmarks/quality_restore.py`` does: whole pictures at their own resolution, damaged by
the seeded synthesiser and quantised to 8 bits like a scan, run through the same code as
``artgan restore`` (so in bf16 where that is, whatever the training precision). The
damage is drawn once, so every step sees the same test. Lower scores are better.
"""

from __future__ import annotations

import copy
from pathlib import Path

from torch import Tensor, nn

from artgan import ArtganError
from artgan.convert import pil_to_uint8
from artgan.imageio import read_image
from artgan.metrics import psnr
from artgan_restore.damage import damaged_scan
from artgan_restore.detector import detect, pixel_f1
from artgan_restore.restorer import Restorer

MAX_PSNR = 100.0  # dB given to a perfect repair, so one exact case cannot make a score -inf


def _pictures(paths: list[Path]) -> list[Tensor]:
    return [pil_to_uint8(read_image(path).rgb) for path in paths]


class DetectorValidation:
    """1 - the detector's mean pixel F1 on thin and on medium damage (2 px tolerance,
    threshold 0.5), plus ``CLEAN_WEIGHT`` times the share of pixels it marks on the same
    pictures undamaged: a detector that finds more damage by also marking clean pictures
    must not win."""

    LEVELS = ("thin", "medium")
    CLEAN_WEIGHT = 10.0  # 1 % of a clean picture marked costs as much as 0.1 of F1
    description = "1 - detector pixel F1 on thin and medium damage + 10 x share marked clean"

    def __init__(self, pictures: list[Tensor], threshold: float = 0.5, tolerance: int = 2):
        """``pictures``: undamaged (3, H, W) uint8 tensors."""
        self.cases = [damaged_scan(picture, level, index)
                      for index, picture in enumerate(pictures) for level in self.LEVELS]
        self.clean = pictures
        self.threshold, self.tolerance = threshold, tolerance

    @classmethod
    def from_paths(cls, paths: list[Path]) -> DetectorValidation:
        return cls(_pictures(paths))

    def __call__(self, networks: dict[str, nn.Module]) -> float:
        detector = networks["detector"]
        scores = [pixel_f1(detect(detector, damaged, self.threshold), truth, self.tolerance)[2]
                  for damaged, truth in self.cases]
        marked = [float(detect(detector, picture, self.threshold).float().mean())
                  for picture in self.clean]
        return 1.0 - sum(scores) / len(scores) + self.CLEAN_WEIGHT * sum(marked) / len(marked)


class InpainterValidation:
    """Minus the inpainter's mean PSNR (dB) inside the exact damage mask over thin, medium
    and large damage, repaired window by window as ``artgan restore`` does."""

    LEVELS = ("thin", "medium", "large")
    description = "minus the inpainter's mean PSNR (dB) inside thin, medium and large damage"

    def __init__(self, pictures: list[Tensor], size: int):
        """``pictures``: undamaged (3, H, W) uint8 tensors; ``size``: the window size."""
        self.cases = [(damaged, mask, picture)
                      for index, picture in enumerate(pictures) for level in self.LEVELS
                      for damaged, mask in [damaged_scan(picture, level, index)] if mask.any()]
        if not self.cases:
            raise ArtganError("no validation picture has any damage to repair; give larger "
                              "pictures or more of them")
        self.size = size

    @classmethod
    def from_paths(cls, paths: list[Path], size: int) -> InpainterValidation:
        return cls(_pictures(paths), size)

    def __call__(self, networks: dict[str, nn.Module]) -> float:
        # a copy: the Restorer turns its networks to channels-last and eval mode
        inpainter = copy.deepcopy(networks["inpainter"])
        device = next(inpainter.parameters()).device
        restorer = Restorer(nn.ModuleDict({"inpainter": inpainter}), self.size, device)
        total = 0.0
        for damaged, mask, original in self.cases:
            restored = restorer.inpaint(damaged, mask)
            total += min(MAX_PSNR, psnr(restored[None] / 255, original[None] / 255,
                                        mask[None, None]))
        return -total / len(self.cases)
