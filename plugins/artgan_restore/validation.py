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
from artgan_restore.detector import damage_probability, pixel_f1
from artgan_restore.restorer import Restorer

MAX_PSNR = 100.0  # dB given to a perfect repair, so one exact case cannot make a score -inf


def _pictures(paths: list[Path]) -> list[Tensor]:
    return [pil_to_uint8(read_image(path).rgb) for path in paths]


class DetectorValidation:
    """1 - the detector's mean pixel F1 on thin and on medium damage (2 px tolerance) at
    the lowest threshold of ``THRESHOLDS`` at which it marks at most ``BUDGET`` of the same
    pictures undamaged, on average; plus ``CLEAN_WEIGHT`` times what it marks beyond that
    budget where no threshold keeps within it.

    A shipped detector runs at a threshold calibrated for a false-alarm budget
    (``benchmarks/calibrate_restore.py``), so this is what a checkpoint would deliver. A
    score at one fixed threshold misjudges: training on clean pictures that look like
    damage (``looks.clean_looks``) makes a detector more sparing, which lowers its F1 at
    0.5, while at an equal false-alarm rate it finds as much or more (on these 40
    validation pictures, a 4,000-update fine-tune of ``restore/general`` against the
    shipped detector: F1 0.677 against 0.657 with 0.05 % of the clean pictures marked, 0.649
    against 0.516 with 0.01 %).
    """

    LEVELS = ("thin", "medium")
    # mean share of an undamaged picture marked: a tenth of the 0.5 % the thresholds are
    # calibrated for, so that a step is picked for finding damage where it marks least
    BUDGET = 0.0005
    THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
    CLEAN_WEIGHT = 10.0  # beyond the budget, 1 % of a clean picture costs 0.1 of F1
    description = ("1 - detector pixel F1 on thin and medium damage at the lowest threshold "
                   "marking <= 0.05% of the clean pictures")

    def __init__(self, pictures: list[Tensor], tolerance: int = 2):
        """``pictures``: undamaged (3, H, W) uint8 tensors."""
        self.cases = [damaged_scan(picture, level, index)
                      for index, picture in enumerate(pictures) for level in self.LEVELS]
        self.clean = pictures
        self.tolerance = tolerance

    @classmethod
    def from_paths(cls, paths: list[Path]) -> DetectorValidation:
        return cls(_pictures(paths))

    def __call__(self, networks: dict[str, nn.Module]) -> float:
        detector = networks["detector"]
        clean = [damage_probability(detector, picture) for picture in self.clean]
        threshold, marked = self.THRESHOLDS[-1], 1.0
        for threshold in self.THRESHOLDS:
            marked = sum(float((p > threshold).float().mean()) for p in clean) / len(clean)
            if marked <= self.BUDGET:
                break
        found = [(damage_probability(detector, damaged) > threshold, truth)
                 for damaged, truth in self.cases]
        f1 = sum(pixel_f1(mask, truth, self.tolerance)[2] for mask, truth in found) / len(found)
        return 1.0 - f1 + self.CLEAN_WEIGHT * max(0.0, marked - self.BUDGET)


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
