"""Damaged pictures, as downloads and full disks leave them: every truncation or flipped byte
of a real JPEG, PNG, TIFF or WebP file either reads or is one line naming the file.

The damage is drawn from a fixed seed, so a failure names a case that can be replayed.
"""

from __future__ import annotations

import contextlib
import io
import random
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from artgan_restore.restorer import read_mask
from PIL import Image

from artgan.errors import ArtganError
from artgan.imageio import MAX_PIXELS_ENV, read_image

CASES = 40  # damaged copies per sample file: 9 samples, two readers, about 700 reads
CASE_SECONDS = 2.0  # one read of a 24x16 picture takes milliseconds; more is a hang
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _samples() -> dict[str, bytes]:
    """Small files of each format in the modes users bring: EXIF-rotated and progressive
    JPEG, RGBA, palette and 16-bit PNG, plain and compressed TIFF, lossy and lossless WebP."""
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    rgb = Image.fromarray(pixels)
    rgba = Image.fromarray(np.dstack([pixels, pixels[:, :, :1]]), "RGBA")
    deep = Image.fromarray(pixels[:, :, 0].astype(np.uint16) * 257)
    exif = rgb.getexif()
    exif[0x0112] = 6  # orientation: rotated
    return {
        "exif.jpg": _encode(rgb, "JPEG", quality=80, exif=exif),
        "progressive.jpg": _encode(rgb, "JPEG", progressive=True),
        "rgba.png": _encode(rgba, "PNG"),
        "palette.png": _encode(rgb.convert("P"), "PNG"),
        "deep.png": _encode(deep, "PNG"),
        "plain.tif": _encode(rgb, "TIFF"),
        "lzw.tif": _encode(rgba, "TIFF", compression="tiff_lzw"),
        "lossy.webp": _encode(rgb, "WEBP", quality=80),
        "lossless.webp": _encode(rgba, "WEBP", lossless=True),
    }


SAMPLES = _samples()


def _damaged(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One damaged copy of ``data`` and what was done to it."""
    kind = rng.choice(("truncate", "flip header", "flip anywhere"))
    if kind == "truncate":
        cut = rng.randrange(len(data))
        return f"truncated to {cut} bytes", data[:cut]
    damaged = bytearray(data)
    span = min(len(data), 128) if kind == "flip header" else len(data)
    flips = []
    for _ in range(rng.randint(1, 4)):
        position, bit = rng.randrange(span), rng.randrange(8)
        damaged[position] ^= 1 << bit
        flips.append(f"{position}.{bit}")
    damage = f"bits flipped at {', '.join(flips)}"
    if damaged.startswith(PNG_SIGNATURE) and rng.random() < 0.5:
        return f"{damage}, CRCs repaired", _repair_png_crcs(damaged)
    return damage, bytes(damaged)


def _repair_png_crcs(data: bytearray) -> bytes:
    """``data`` with every PNG chunk's CRC made to match again: without this nearly every
    flip stops at a CRC check, and the chunk parsers and decoders behind it go untested."""
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = position + 8 + length
        if end + 4 > len(data):
            break
        struct.pack_into(">I", data, end, zlib.crc32(data[position + 4:end]))
        position = end + 4
    return bytes(data)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Turn a read that runs far too long into a failure instead of a hung test run."""
    if not hasattr(signal, "setitimer"):  # Windows: rely on the test's total time
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _problem(reader: Callable[[Path], object], path: Path) -> str | None:
    """None when ``reader`` reads ``path`` or refuses it in one line naming it, else why not."""
    try:
        with _deadline(CASE_SECONDS):
            reader(path)
    except ArtganError as exc:
        message = str(exc)
        if "\n" in message or str(path) not in message:
            return f"unclear message {message!r}"
    except Exception as exc:  # anything else is the bug this test looks for
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(autouse=True)
def small_pixel_limit(monkeypatch):
    """A flipped size field may claim millions of pixels: refused, never decoded for long."""
    monkeypatch.setenv(MAX_PIXELS_ENV, str(1_000_000))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's own, e.g. "Corrupt EXIF data"
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_damaged_files_read_or_fail_in_one_line(tmp_path, name):
    rng = random.Random(f"artgan fuzz {name}")
    path = tmp_path / f"damaged{Path(name).suffix}"
    path.write_bytes(SAMPLES[name])
    assert _problem(read_image, path) is None and _problem(read_mask, path) is None
    problems = []
    for case in range(CASES):
        damage, data = _damaged(SAMPLES[name], rng)
        path.write_bytes(data)
        for reader in (read_image, read_mask):
            problem = _problem(reader, path)
            if problem:
                problems.append(f"case {case} ({damage}), {reader.__name__}: {problem}")
    assert not problems, "\n".join(problems)


def _mistyped_strip_offsets(field_type: int) -> bytes:
    """A TIFF whose StripOffsets tag (273) claims ``field_type``: one flipped type byte."""
    data = bytearray(SAMPLES["plain.tif"])
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", data, entry)[0] == 273:
            struct.pack_into("<H", data, entry + 2, field_type)
    return bytes(data)


@pytest.mark.parametrize("field_type", [2, 5, 7, 11])  # ASCII, RATIONAL, UNDEFINED, FLOAT
def test_tiff_with_a_mistyped_tag_is_one_line(tmp_path, field_type):
    path = tmp_path / "mistyped.tif"
    path.write_bytes(_mistyped_strip_offsets(field_type))
    assert _problem(read_image, path) is None
