"""Reading, writing and finding image files, with one-line errors a user can act on.

Every task reads and writes pictures, so the awkward cases live here once: broken or
huge files, odd colour modes (16-bit, palettes, CMYK, alpha), EXIF rotation, and writes
that must never clobber an input or leave a half-written file behind.
"""

from __future__ import annotations

import glob
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artgan.atomic import atomic_path
from artgan.errors import ArtganError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "ARTGAN_MAX_PIXELS"

# Pillow writer per extension, and whether that format can hold an alpha channel.
_FORMATS = {
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".png": ("PNG", True),
    ".webp": ("WEBP", True),
    ".bmp": ("BMP", False),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
}
# zlib level for PNG output. PNG is lossless at any level, so a level only trades time for
# size, and at 12 megapixels the time is seconds. Written by Pillow 12 (AMD EPYC), a
# 4000x3000 mosaic of photos at their own resolution: levels 1 / 2 / 3 / 6 take 0.94 / 0.96
# / 1.23 / 2.57 s for 22.2 / 22.0 / 21.7 / 22.0 MB; a painting enlarged to that size 0.62 /
# 0.69 / 1.02 / 2.96 s for 10.8 / 10.4 / 10.0 / 8.8 MB.
PNG_COMPRESS_LEVEL = 2

# Held while Pillow's own pixel limit is switched off, so that concurrent reads cannot
# restore each other's setting and leave it off.
_PILLOW_LIMIT = threading.Lock()

# What Pillow raises for a damaged file (an OSError with an errno is a real I/O error).
# TypeError: Pillow raises it for a TIFF tag of the wrong type (e.g. a strip offset as text)
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError,
                  struct.error, zlib.error)


class ImageError(ArtganError):
    """An input image that cannot be used; the message starts with the file's path."""


@dataclass
class Picture:
    """A decoded image: RGB pixels, with any transparency kept aside so models see 3 channels."""

    rgb: Image.Image
    alpha: Image.Image | None
    path: Path | None
    mode: str


def max_pixels_limit() -> int:
    """The pixel limit: ``ARTGAN_MAX_PIXELS`` if set, else ``DEFAULT_MAX_PIXELS``."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ArtganError(f"{MAX_PIXELS_ENV} must be a positive whole number, got {raw!r}")
    return value


def read_image(path: str | os.PathLike, max_pixels: int | None = None) -> Picture:
    """Decode the first frame of ``path`` fully, upright (EXIF) and as 8-bit RGB (+ alpha).

    The size is checked against ``max_pixels`` (default: ``max_pixels_limit()``) before any
    pixel is decoded, so a small file claiming a huge size cannot exhaust memory. That check
    replaces Pillow's own (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 million pixels by
    default), which would otherwise refuse pictures that ``ARTGAN_MAX_PIXELS`` allows.
    """
    p = Path(path)
    limit = max_pixels_limit() if max_pixels is None else max_pixels
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow checks sizes again while decoding a few icon formats (ICO, ICNS, BLP).
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _open_unlimited(p) as im:
                width, height = im.size
                if width * height > limit:
                    raise ImageError(
                        f"{p}: image too large: {width}x{height} is {width * height:,} pixels, "
                        f"over the limit of {limit:,} (set {MAX_PIXELS_ENV} to change it)"
                    )
                mode = im.mode
                im.load()
                upright = ImageOps.exif_transpose(im)
        rgb, alpha = split_alpha(upright)
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not an image file (unknown format or damaged header)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{p}: image too large ({_one_line(exc)})") from None
    except _DECODE_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise ImageError(f"{p}: cannot read: {exc.strerror}") from None
        raise ImageError(f"{p}: corrupt or truncated image ({_one_line(exc)})") from None
    except ImageError:
        raise
    except ArtganError as exc:
        raise ImageError(f"{p}: {exc}") from None
    return Picture(rgb=rgb, alpha=alpha, path=p, mode=mode)


def _open_unlimited(path: Path) -> Image.Image:
    """``Image.open`` with Pillow's pixel limit off: the caller applies artgan's instead."""
    with _PILLOW_LIMIT:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Turn any Pillow mode into ``(RGB image, L alpha or None)``.

    High-bit-depth and float modes are rescaled to 8 bits rather than clipped (Pillow's
    own conversion clips, which turns most 16-bit pictures white). An RGB image comes back
    as it is, not copied: a copy of a large scan costs hundreds of MB.
    """
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _to_8bit(image).convert("RGB"), None
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    if mode == "RGB":
        return image, None
    try:
        return image.convert("RGB"), None
    except ValueError:
        raise ArtganError(f"unsupported image mode {mode}") from None


def attach_alpha(rgb: Image.Image, alpha: Image.Image) -> Image.Image:
    """RGBA from ``rgb`` and ``alpha``; the alpha is resized if the picture changed size."""
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BICUBIC)
    rgba = rgb.convert("RGB")
    rgba.putalpha(alpha.convert("L"))
    return rgba


def _to_8bit(image: Image.Image) -> Image.Image:
    """Rescale a 16-bit, 32-bit integer or float single-channel image to mode L."""
    values = np.asarray(image).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0
    elif image.mode == "I" and low >= 0 and high <= 255:
        scaled = values  # 8-bit data widened to 32 bits
    elif image.mode == "I" and low >= 0 and high <= 65535:
        scaled = values / 257.0  # 16-bit data in a 32-bit container
    elif image.mode == "F" and low >= 0 and high <= 1:
        scaled = values * 255.0
    elif high > low:
        scaled = (values - low) / (high - low) * 255.0
    else:
        scaled = values
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_image(
    image: Image.Image,
    path: str | os.PathLike,
    *,
    alpha: Image.Image | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    quality: int = 95,
) -> Path:
    """Save ``image`` atomically, refusing to overwrite any of ``inputs``.

    The file is written beside its destination and renamed into place, so a crash or
    full disk never leaves a half-written picture. Alpha (given, or in ``image``) is kept
    for PNG, WEBP and TIFF and dropped for JPEG and BMP.
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in _FORMATS:
        known = ", ".join(sorted(_FORMATS))
        raise ArtganError(f"cannot write {out}: unknown image extension {suffix!r} (use {known})")
    fmt, keeps_alpha = _FORMATS[suffix]
    for source in inputs:
        if _same_file(out, Path(source)):
            raise ArtganError(f"refusing to overwrite input file {out}")
    if out.is_dir():
        raise ArtganError(f"cannot write {out}: is a folder")

    rgb, own_alpha = split_alpha(image)
    alpha = own_alpha if alpha is None else alpha
    picture = attach_alpha(rgb, alpha) if keeps_alpha and alpha is not None else rgb
    options: dict[str, int] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    elif fmt == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL

    try:
        with atomic_path(out) as temporary:
            picture.save(temporary, format=fmt, **options)
    except PermissionError:
        raise ArtganError(f"cannot write {out}: permission denied") from None
    except (FileExistsError, NotADirectoryError):
        raise ArtganError(f"cannot write {out}: part of its folder path is a file") from None
    except OSError as exc:
        raise ArtganError(f"cannot write {out}: {exc.strerror or _one_line(exc)}") from None
    except ValueError as exc:
        raise ArtganError(f"cannot write {out}: {_one_line(exc)}") from None
    return out


def write_animation(frames: Sequence[Image.Image], path: Path, fps: float) -> Path:
    """A looping GIF or WebP of ``frames``, written atomically."""
    fmt = "GIF" if path.suffix.lower() == ".gif" else "WEBP"
    options = {"lossless": True} if fmt == "WEBP" else {"optimize": False}
    try:
        with atomic_path(path) as temporary:
            frames[0].save(temporary, format=fmt, save_all=True, append_images=list(frames[1:]),
                           duration=round(1000 / fps), loop=0, **options)
    except (OSError, ValueError) as exc:
        raise ArtganError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return path


def check_writable(paths: Sequence[Path]) -> None:
    """Fail now if a path cannot be written: a folder in the way, a file as parent, no rights."""
    for folder in sorted({path.parent for path in paths}):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise ArtganError(f"cannot write to {folder}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ArtganError(f"cannot write to {folder}: permission denied")
    for path in paths:
        if path.is_dir():
            raise ArtganError(f"cannot write {path}: is a folder")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def find_images(inputs: Sequence[str]) -> list[tuple[Path, Path]]:
    """Expand files, folders and glob patterns into ``(path, relative path)`` pairs.

    The relative path lets outputs mirror the input layout: it is relative to the folder
    given, to the fixed leading folders of a glob, or is just the name of a file given.
    A file given by name is kept whatever its extension so that reading it reports why
    it is unusable; folders and globs only yield files with ``IMAGE_EXTENSIONS``.
    """
    found: list[tuple[Path, Path]] = []
    seen: set[str] = set()

    def add(path: Path, relative: Path) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append((path, relative))

    for item in inputs:
        p = Path(item)
        if p.is_file():
            add(p, Path(p.name))
        elif p.is_dir():
            for path in sorted(_images_under(p), key=lambda q: q.relative_to(p).parts):
                add(path, path.relative_to(p))
        elif _is_pattern(item):
            base = _pattern_base(item)
            matches = [Path(m) for m in sorted(glob.glob(item, recursive=True))]
            images = [m for m in matches if m.is_file() and _is_image_name(m)]
            if not images:
                raise ArtganError(f"{item}: no such file or folder")
            for path in images:
                add(path, path.relative_to(base))
        else:
            raise ArtganError(f"{item}: no such file or folder")
    return found


def _images_under(folder: Path) -> list[Path]:
    return [
        Path(root) / name
        for root, _dirs, files in os.walk(folder)
        for name in files
        if _is_image_name(Path(name))
    ]


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _is_pattern(text: str) -> bool:
    return any(char in text for char in "*?[")


def _pattern_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that contain no wildcard."""
    fixed: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if _is_pattern(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def default_output_path(path: str | os.PathLike, suffix: str) -> Path:
    """Where a result goes by default: ``photo.jpg`` + ``restored`` -> ``photo.restored.jpg``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.{suffix}{p.suffix}")
