"""Damage a picture on purpose, then let artgan find the damage and paint it back.

Run from the repository root after ``pip install .``:

    python examples/damage_and_restore.py PICTURE OUT_DIR [thin|medium|large [MODEL]]

MODEL is a restore model's name or path (default: the shipped ``general``).

Writes ``damaged.png`` (with the exact ``true_mask.png``), ``restored.png`` (damage found by
the detector), ``restored_true_mask.png`` (the known mask given) and ``comparison.jpg``
(those three and the original side by side), and prints how close each repair is to the
undamaged picture inside the damage. The synthesiser is seeded, so
the same command always makes the same damage.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from artgan_restore.damage import damaged_scan
from PIL import Image

import artgan
from artgan.metrics import psnr


def psnr_inside(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB over the masked pixels only (where the repair happened)."""
    def batch(pixels: np.ndarray) -> torch.Tensor:  # H x W x 3 uint8 -> 1 x 3 x H x W
        return torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255

    return psnr(batch(a), batch(b), torch.from_numpy(mask)[None, None].float())


def main(picture: str, out_dir: str, level: str = "medium", model: str | None = None) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    original = np.array(Image.open(picture).convert("RGB"))

    damaged, mask = damaged_scan(torch.from_numpy(original).permute(2, 0, 1), level, seed=1)
    damaged = np.ascontiguousarray(damaged.permute(1, 2, 0).numpy())
    true_mask = mask.numpy()
    Image.fromarray(damaged).save(out / "damaged.png")
    Image.fromarray(true_mask.astype(np.uint8) * 255).save(out / "true_mask.png")

    # force: this picture is damaged on purpose, so repaint whatever the detector finds even
    # where the safety net would ask to look first (marks reaching more than 10%)
    restored, found = artgan.restore(damaged, model=model, return_mask=True, force=True)
    Image.fromarray(restored).save(out / "restored.png")
    given = artgan.restore(damaged, mask=true_mask, model=model)
    Image.fromarray(given).save(out / "restored_true_mask.png")
    side_by_side = np.concatenate([damaged, restored, given, original], axis=1)
    Image.fromarray(side_by_side).save(out / "comparison.jpg", quality=90)

    print(f"{level} damage: {true_mask.mean():.1%} of the picture, detector marked "
          f"{found.mean():.1%}")
    print(f"PSNR inside the damage: damaged {psnr_inside(damaged, original, true_mask):.1f} dB, "
          f"restored {psnr_inside(restored, original, true_mask):.1f} dB, "
          f"restored with the true mask {psnr_inside(given, original, true_mask):.1f} dB")
    written = "damaged.png, true_mask.png, restored.png, restored_true_mask.png, comparison.jpg"
    print(f"wrote {written} to {out}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])
