"""Where the studio keeps files: one temporary folder, removed when the studio stops.

Uploads arrive in it (gradio's cache is pointed there) and results are written there for
the browser to download; nothing is written anywhere else, and no name from the browser
chooses a path: each result gets a fresh folder of the studio's, named by the studio or,
for restore's downloads, after the upload (``photo.restored.png``) through
``download_stem``, which keeps only letters, digits, ``-``, ``_`` and inner dots, so the
name cannot leave that folder or hide the file. Uploads are decoded by
``artgan.imageio.read_image``, so the CLI's pixel limit, EXIF rotation and mode handling
apply, and an error names the uploaded file, never the server path it was stored at.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from PIL import Image

from artgan.errors import ArtganError
from artgan.imageio import Picture, max_pixels_limit, read_image, write_image

UPLOAD_BYTES_PER_PIXEL = 4  # an uncompressed RGBA picture at the pixel limit fits
STEM_CHARS = 48  # a download's stem: with a suffix, within any file system's 255 bytes


class Workspace:
    """The studio's temporary folder: ``uploads/`` (gradio's cache) and ``results/``."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="artgan-studio-"))
        self.uploads = self.root / "uploads"
        self.results = self.root / "results"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(exist_ok=True)

    def result_path(self, name: str) -> Path:
        """A fresh file for one result, ``name`` chosen by the studio (e.g. ``restored.png``)."""
        folder = self.results / uuid.uuid4().hex
        folder.mkdir()
        return folder / name

    def write(self, image: Image.Image, name: str, alpha: Image.Image | None = None) -> str:
        """Write a result for download; returns its path as gradio wants it."""
        return str(write_image(image, self.result_path(name), alpha=alpha))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def download_stem(name: str) -> str:
    """``name`` (an upload's, from the browser) as the stem of a result's file name: runs of
    anything but letters, digits, ``-``, ``_`` and ``.`` become ``_``, no leading or
    trailing dots, at most ``STEM_CHARS``; ``picture`` when nothing is left."""
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip(".")[:STEM_CHARS].strip(".")
    return cleaned or "picture"


def max_upload_bytes() -> int:
    """The largest upload accepted: a picture at the CLI's pixel limit, uncompressed."""
    return max_pixels_limit() * UPLOAD_BYTES_PER_PIXEL


def read_upload(path: str | os.PathLike | None) -> Picture:
    """An uploaded picture, read as the CLI reads files; errors name the upload only."""
    if not path:
        raise ArtganError("upload a picture first")
    stored = Path(path)
    try:
        return read_image(stored)
    except ArtganError as exc:
        raise ArtganError(str(exc).replace(str(stored), stored.name)) from None
