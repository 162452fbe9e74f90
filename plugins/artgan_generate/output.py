"""Where generated pictures go on disk: single files, numbered files, grids, animations.

Paths are planned and checked before any sampling, so a bad ``--out`` fails in a moment
with one line instead of after minutes of work; ``artgan.imageio`` writes every file
atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from artgan import ArtganError
from artgan.imageio import IMAGE_EXTENSIONS

DEFAULT_OUT = "generated"
ANIMATIONS = (".gif", ".webp")


def _is_file_target(target: Path, extensions: Sequence[str]) -> bool:
    return target.suffix.lower() in extensions and not target.is_dir()


def image_paths(out: str | None, count: int, seed: int) -> list[Path]:
    """``count`` image files: in the folder ``out`` as ``seed<S>-<i>.png``, or from a file name.

    ``--out cat.png`` with one image writes ``cat.png``; with more, ``cat-0000.png``, ...
    """
    target = Path(out or DEFAULT_OUT)
    if _is_file_target(target, IMAGE_EXTENSIONS):
        if count == 1:
            return [target]
        return [target.with_name(f"{target.stem}-{i:04d}{target.suffix}") for i in range(count)]
    return [target / f"seed{seed}-{i:04d}.png" for i in range(count)]


def grid_path(out: str | None, seed: int) -> Path:
    target = Path(out or DEFAULT_OUT)
    return target if _is_file_target(target, IMAGE_EXTENSIONS) else target / f"seed{seed}-grid.png"


def animation_paths(out: str | None, frames: int) -> tuple[list[Path], Path]:
    """Frame files and the animation: ``--out walk.gif`` puts frames in ``walk-frames/``;
    a folder gets ``frame-<i>.png`` and ``walk.gif`` inside it."""
    target = Path(out or DEFAULT_OUT)
    if _is_file_target(target, ANIMATIONS):
        folder, animation = target.with_name(f"{target.stem}-frames"), target
    elif _is_file_target(target, IMAGE_EXTENSIONS):
        raise ArtganError(f"--out {out}: an interpolation needs a folder or a .gif/.webp file")
    else:
        folder, animation = target, target / "walk.gif"
    return [folder / f"frame-{i:04d}.png" for i in range(frames)], animation


def grid(images: Sequence[Image.Image]) -> Image.Image:
    """One picture of ``images`` in a near-square grid with 2 px black gaps (built in uint8:
    a float copy of every picture would be four times the size)."""
    import torch

    from artgan.convert import image_grid, pil_to_uint8, uint8_to_pil

    batch = torch.stack([pil_to_uint8(image) for image in images])
    return uint8_to_pil(image_grid(batch))
