"""Image files: every bad input gets a one-line error and leaves the inputs untouched."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artgan import atomic, imageio
from artgan.errors import ArtganError
from artgan.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    Picture,
    default_output_path,
    find_images,
    read_image,
    write_image,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def noise(size=(16, 16), mode="RGB", seed=0) -> Image.Image:
    """Random pixels: they do not compress, so a cut file really is missing pixel data."""
    channels = len(mode)
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    data = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    return Image.fromarray(data).convert(mode)


def snapshot(folder: Path) -> dict[str, str]:
    """A hash of every file under ``folder``, to prove nothing was changed or added."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def truncated(tmp_path: Path, name: str, fmt: str) -> Path:
    path = tmp_path / name
    noise().save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG claiming a huge size (one byte of pixel data): a cheap decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0"))
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def assert_refused(path: Path, folder: Path, fragment: str, **kwargs) -> None:
    before = snapshot(folder)
    with pytest.raises(ImageError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path))
    assert fragment in message
    assert "\n" not in message
    assert snapshot(folder) == before


# --- bad inputs -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    noise().save(tmp_path / "other.png")
    assert_refused(tmp_path / "missing.png", tmp_path, "no such file")


def test_folder(tmp_path):
    (tmp_path / "photos.png").mkdir()
    noise().save(tmp_path / "photos.png" / "a.png")
    assert_refused(tmp_path / "photos.png", tmp_path, "is a folder")


def test_text_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture\n")
    assert_refused(path, tmp_path, "not an image file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert_refused(path, tmp_path, "not an image file")


def test_truncated_jpeg(tmp_path):
    assert_refused(truncated(tmp_path, "cut.jpg", "JPEG"), tmp_path, "corrupt or truncated")


def test_truncated_png(tmp_path):
    assert_refused(truncated(tmp_path, "cut.png", "PNG"), tmp_path, "corrupt or truncated")


def test_huge_header_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(60_000, 60_000))
    assert_refused(path, tmp_path, "too large")


def test_over_max_pixels(tmp_path):
    path = tmp_path / "big.png"
    noise().save(path)
    assert_refused(path, tmp_path, "16x16 is 256 pixels, over the limit of 100", max_pixels=100)


def test_max_pixels_from_environment(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    noise().save(path)
    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "255")
    assert_refused(path, tmp_path, "ARTGAN_MAX_PIXELS")
    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "256")
    assert read_image(path).rgb.size == (16, 16)
    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "lots")
    with pytest.raises(ArtganError, match="positive whole number"):
        read_image(path)


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_max_pixels_above_pillows_limit_is_the_one_that_applies(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    noise().save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow alone refuses 256 px
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "1000")
    assert read_image(path).rgb.size == (16, 16)
    monkeypatch.setenv("ARTGAN_MAX_PIXELS", "255")
    assert_refused(path, tmp_path, "over the limit of 255")
    assert Image.MAX_IMAGE_PIXELS == 100  # Pillow's own limit is left as it was


@pytest.mark.skipif(IS_ROOT, reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    noise().save(path)
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match="permission denied") as info:
            read_image(path)
        assert str(info.value).startswith(str(path))
    finally:
        path.chmod(0o644)


@pytest.mark.skipif(IS_ROOT, reason="root can write anywhere")
def test_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ArtganError, match="permission denied"):
            write_image(noise(), folder / "out.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_permission_denied_messages_when_root(tmp_path, monkeypatch):
    """Root ignores file modes, so simulate the refusals the real tests above check."""
    source = tmp_path / "in.png"
    noise().save(source)
    before = snapshot(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(imageio.Image, "open", refuse)
    with pytest.raises(ImageError) as info:
        read_image(source)
    assert str(info.value) == f"{source}: permission denied"
    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    out = tmp_path / "out.png"
    with pytest.raises(ArtganError) as info:
        write_image(noise(), out, inputs=[source])
    assert str(info.value) == f"cannot write {out}: permission denied"
    assert snapshot(tmp_path) == before


def test_output_under_a_regular_file(tmp_path):
    source = tmp_path / "in.png"
    noise().save(source)
    before = snapshot(tmp_path)
    out = source / "out.png"
    with pytest.raises(ArtganError) as info:
        write_image(noise(), out, inputs=[source])
    assert str(info.value) == f"cannot write {out}: part of its folder path is a file"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink", "hardlink"])
def test_refuses_to_overwrite_input(tmp_path, spelling):
    source = tmp_path / "in.png"
    noise().save(source)
    target = {
        "same": source,
        "dotdot": tmp_path / ".." / tmp_path.name / "in.png",
        "symlink": tmp_path / "link.png",
        "hardlink": tmp_path / "hard.png",
    }[spelling]
    if spelling == "symlink":
        target.symlink_to(source)
    if spelling == "hardlink":
        os.link(source, target)
    before = snapshot(tmp_path)
    with pytest.raises(ArtganError) as info:
        write_image(noise(seed=1), target, inputs=[str(source)])
    assert str(info.value) == f"refusing to overwrite input file {target}"
    assert snapshot(tmp_path) == before


def test_unknown_output_extension(tmp_path):
    with pytest.raises(ArtganError, match=r"unknown image extension '\.xyz'"):
        write_image(noise(), tmp_path / "out.xyz")
    assert list(tmp_path.iterdir()) == []


# --- reading ----------------------------------------------------------------------------


def test_exif_orientation_6_rotates(tmp_path):
    stored = Image.new("RGB", (16, 8), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 8, 8))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif, quality=95)
    picture = read_image(path)
    assert picture.rgb.size == (8, 16)
    top, bottom = picture.rgb.getpixel((4, 2)), picture.rgb.getpixel((4, 13))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_rgba_alpha_round_trip_png(tmp_path):
    original = noise(mode="RGBA")
    source = tmp_path / "in.png"
    original.save(source)
    picture = read_image(source)
    assert isinstance(picture, Picture)
    assert (picture.rgb.mode, picture.alpha.mode, picture.mode) == ("RGB", "L", "RGBA")
    assert picture.path == source
    out = write_image(picture.rgb, tmp_path / "out" / "copy.png", alpha=picture.alpha)
    with Image.open(out) as back:
        assert back.mode == "RGBA"
        assert np.array_equal(np.asarray(back), np.asarray(original))


def test_alpha_dropped_for_jpeg(tmp_path):
    out = write_image(noise(mode="RGBA"), tmp_path / "out.jpg")
    with Image.open(out) as back:
        assert back.mode == "RGB"


def test_alpha_resized_to_a_larger_result(tmp_path):
    alpha = Image.new("L", (8, 8), 100)
    out = write_image(noise(), tmp_path / "big.webp", alpha=alpha)
    with Image.open(out) as back:
        assert back.mode == "RGBA" and back.size == (16, 16)
        assert back.getchannel("A").getextrema() == (100, 100)


def test_grayscale(tmp_path):
    path = tmp_path / "gray.png"
    noise(mode="L").save(path)
    picture = read_image(path)
    assert (picture.rgb.mode, picture.alpha, picture.mode) == ("RGB", None, "L")
    r, g, b = (np.asarray(c) for c in picture.rgb.split())
    assert np.array_equal(r, g) and np.array_equal(g, b)


def test_palette_with_and_without_transparency(tmp_path):
    image = noise().quantize(8)
    plain, clear = tmp_path / "plain.png", tmp_path / "clear.png"
    image.save(plain)
    image.save(clear, transparency=0)
    picture = read_image(plain)
    assert (picture.rgb.mode, picture.alpha, picture.mode) == ("RGB", None, "P")
    assert np.array_equal(np.asarray(picture.rgb), np.asarray(image.convert("RGB")))
    seethrough = read_image(clear)
    expected = (np.asarray(image) != 0) * 255
    assert np.array_equal(np.asarray(seethrough.alpha), expected)


def test_cmyk(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 0))
    cmyk.paste((0, 255, 255, 0), (0, 0, 8, 16))
    path = tmp_path / "print.tif"
    cmyk.save(path)
    picture = read_image(path)
    assert (picture.rgb.mode, picture.mode) == ("RGB", "CMYK")
    assert picture.rgb.getpixel((2, 2)) == (255, 0, 0)
    assert picture.rgb.getpixel((12, 2)) == (255, 255, 255)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[65535, 32768, 0, 257]] * 4, dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    picture = read_image(path)
    assert picture.mode.startswith("I")
    assert [picture.rgb.getpixel((x, 0))[0] for x in range(4)] == [255, 128, 0, 1]


def test_float_image_is_scaled(tmp_path):
    values = np.array([[0.0, 0.5, 1.0]] * 2, dtype=np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    picture = read_image(path)
    assert [picture.rgb.getpixel((x, 0))[0] for x in range(3)] == [0, 128, 255]


def test_multi_frame_uses_the_first(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert read_image(path).rgb.getpixel((0, 0)) == (255, 0, 0)


# --- writing ----------------------------------------------------------------------------


@pytest.mark.parametrize("extension", IMAGE_EXTENSIONS)
def test_write_every_format(tmp_path, extension):
    out = write_image(noise(), tmp_path / "deep" / "folder" / f"out{extension}")
    assert out == tmp_path / "deep" / "folder" / f"out{extension}"
    assert read_image(out).rgb.size == (16, 16)
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_write_replaces_and_leaves_no_temp_files(tmp_path):
    out = tmp_path / "out.png"
    write_image(noise(seed=1), out)
    write_image(noise(seed=2), out)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert np.array_equal(np.asarray(read_image(out).rgb), np.asarray(noise(seed=2)))


def test_failed_write_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    out = tmp_path / "out.png"
    write_image(noise(seed=1), out)
    before = snapshot(tmp_path)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    with pytest.raises(ArtganError) as info:
        write_image(noise(seed=2), out)
    assert str(info.value) == f"cannot write {out}: No space left on device"
    assert snapshot(tmp_path) == before


# --- finding ----------------------------------------------------------------------------


def make_tree(root: Path) -> None:
    for name in ("b.jpg", "sub/a.PNG", "sub/deeper/c.webp", "sub/notes.txt", "z/d.tiff"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("hello")
        else:
            noise().save(path)


def test_find_images_in_nested_folders(tmp_path):
    make_tree(tmp_path / "in")
    found = find_images([str(tmp_path / "in")])
    assert [str(rel) for _, rel in found] == [
        "b.jpg",
        "sub/a.PNG",
        "sub/deeper/c.webp",
        "z/d.tiff",
    ]
    assert all(path == tmp_path / "in" / rel for path, rel in found)


def test_find_images_with_globs(tmp_path):
    make_tree(tmp_path / "in")
    found = find_images([str(tmp_path / "in" / "**" / "*.webp"), str(tmp_path / "in" / "*.jpg")])
    assert [str(rel) for _, rel in found] == ["sub/deeper/c.webp", "b.jpg"]
    nested = find_images([str(tmp_path / "in" / "*" / "*.*")])
    assert [str(rel) for _, rel in nested] == ["sub/a.PNG", "z/d.tiff"]


def test_find_images_keeps_named_files_and_deduplicates(tmp_path):
    make_tree(tmp_path / "in")
    notes = tmp_path / "in" / "sub" / "notes.txt"
    found = find_images([str(notes), str(tmp_path / "in"), str(tmp_path / "in" / "b.jpg")])
    assert found[0] == (notes, Path("notes.txt"))
    assert len(found) == 5
    assert len({path for path, _ in found}) == 5


@pytest.mark.parametrize("item", ["nothing.png", "nothing/*.png"])
def test_find_images_missing(tmp_path, item):
    with pytest.raises(ArtganError) as info:
        find_images([str(tmp_path / item)])
    assert str(info.value) == f"{tmp_path / item}: no such file or folder"


def test_default_output_path():
    assert default_output_path("dir/photo.jpg", "restored") == Path("dir/photo.restored.jpg")
