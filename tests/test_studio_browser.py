"""artgan studio in a real browser: the distribution's headless Chromium driven by
Playwright's Python API (Playwright's own browser download cannot run here).

One studio serves the whole module, with the example posterize plugin installed. Without
Chromium or Playwright these tests are skipped, unless ``ARTGAN_REQUIRE_BROWSER`` is set
(``.ci/run`` sets it, so CI cannot pass by skipping them).
"""

from __future__ import annotations

import importlib
import io
import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artgan.testing import ArtganEnvironment

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "artgan-plugin-example"
LONG = 120_000  # ms: a restore or style transfer on two slow CPU cores


def _chromium() -> str | None:
    found = os.environ.get("ARTGAN_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    return found


def _missing() -> str | None:
    if importlib.util.find_spec("gradio") is None:
        return 'gradio is not installed (pip install "artgan[studio]")'
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed"
    if _chromium() is None:
        return "no Chromium (apt-get install chromium)"
    return None


if _missing():
    if os.environ.get("ARTGAN_REQUIRE_BROWSER"):
        raise RuntimeError(f"browser tests required but {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A running studio (built-in tasks and posterize) and what it left on disk after."""
    from artgan import plugins
    from artgan.studio import running

    sys.path.insert(0, str(EXAMPLE))
    try:
        posterize = importlib.import_module("artgan_posterize")
        with pytest.MonkeyPatch.context() as patch:
            env = ArtganEnvironment(tmp_path_factory.mktemp("home"), patch)
            env.install(posterize, "posterize", "artgan-plugin-example")
            with running("127.0.0.1", _free_port()) as app:
                yield app
    finally:
        sys.path.remove(str(EXAMPLE))
        plugins.reset()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(studio, browser):
    """A fresh page on the studio; fails the test if it asked anything of another host."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    elsewhere: list[str] = []
    page.on("request", lambda request: elsewhere.append(request.url)
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.goto(studio.local_url.replace("localhost", "127.0.0.1"))
    page.get_by_role("tab", name="restore").wait_for()
    yield page
    page.close()
    assert elsewhere == [], f"the page fetched from other hosts: {elsewhere[:3]}"


def _picture(path: Path, size=(256, 192)) -> Path:
    """A smooth gradient: no damage for the detector to find."""
    y, x = np.mgrid[0:size[1], 0:size[0]]
    Image.fromarray(np.stack([x, y, (x + y) // 2], -1).astype(np.uint8)).save(path)
    return path


def _download(page, selector: str) -> list[np.ndarray]:
    """The files offered in ``selector`` once they are there; an error shown instead fails
    the test with its text."""
    links = page.locator(f"{selector} a[href]")
    links.or_(page.locator(".toast-body")).first.wait_for(timeout=LONG)
    if not links.count():
        raise AssertionError(f"the page said: {page.locator('.toast-body').first.inner_text()}")
    return [np.asarray(Image.open(io.BytesIO(page.request.get(links.nth(i).get_attribute(
        "href")).body()))) for i in range(links.count())]


def _slide(page, label: str, value: int) -> None:
    """Type ``value`` into a gradio slider's number box."""
    box = page.get_by_role("spinbutton", name=f"number input for {label}", exact=True)
    box.fill(str(value))
    box.press("Enter")


def test_a_tab_per_task_and_the_plugins_option(page):
    tabs = [tab.inner_text() for tab in page.get_by_role("tab").all()]
    assert tabs == ["generate", "restore", "style-transfer", "posterize"]
    page.get_by_role("tab", name="posterize").click()
    assert page.get_by_label("levels").input_value() == "4"


def _settled_box(page, locator) -> dict:
    """``locator``'s bounding box once it stops changing: the editor lays its canvas out
    again after the picture arrives, and a stroke drawn before that misses it (a CI run
    under load restored an empty mask)."""
    box = locator.bounding_box()
    for _ in range(40):
        page.wait_for_timeout(50)
        again = locator.bounding_box()
        if again == box:
            return box
        box = again
    return box


def _stroke_and_restore(page, source: Path, mode: str = "repair damage",
                        brush: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Upload ``source`` in the restore tab, draw one stroke across its middle (with the
    brush set to ``brush`` px first), restore; returns the downloaded result and mask."""
    page.get_by_role("tab", name="restore").click()
    page.get_by_label(mode).check()
    page.locator("#restore-upload input[type=file]").set_input_files(str(source))
    page.get_by_text("No damage found").wait_for(timeout=LONG)
    if brush is not None:
        page.locator("#restore-editor button[aria-label='Brush Size']").click()
        page.locator("#restore-editor input[type=range]").fill(str(brush))
    canvas = _settled_box(page, page.locator("#restore-editor canvas").first)
    middle_x, middle_y = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(middle_x - 60, middle_y)
    page.mouse.down()
    for step in range(13):
        page.mouse.move(middle_x - 60 + 10 * step, middle_y + step)
    page.mouse.up()
    page.locator("#restore-run").click()
    restored, mask = _download(page, "#restore-download")
    return restored, (mask[..., 0] if mask.ndim == 3 else mask) > 127


@pytest.mark.parametrize("mode", ["repair damage", "remove an object"])
def test_restore_repaints_only_under_the_stroke(page, tmp_path, mode):
    source = _picture(tmp_path / "clean.png")
    restored, mask = _stroke_and_restore(page, source, mode)
    before = np.asarray(Image.open(source))
    changed = (restored.astype(int) != before).any(-1)
    assert 200 < mask.sum() < 0.2 * mask.size  # the stroke, not the picture
    assert not mask[:, :40].any() and not mask[:, -40:].any()  # only around the middle
    assert changed.any() and not (changed & ~mask).any()


def test_the_brush_size_sets_the_strokes_width(page, tmp_path):
    source = _picture(tmp_path / "clean.png")
    _, thin = _stroke_and_restore(page, source, brush=4)
    page.reload()  # a fresh upload box
    _, wide = _stroke_and_restore(page, source, brush=40)
    assert 0 < thin.sum() and wide.sum() > 3 * thin.sum()
    assert wide.any(axis=1).sum() > 2 * thin.any(axis=1).sum()  # taller: a wider line


def test_style_transfer_runs(page, tmp_path):
    source = _picture(tmp_path / "photo.png", (160, 128))
    page.get_by_role("tab", name="style-transfer").click()
    page.locator("#style-transfer-upload input[type=file]").set_input_files(str(source))
    page.locator("#style-transfer-run").click()
    (result,) = _download(page, "#style-transfer-download")
    assert result.shape[:2] == (128, 160)
    assert np.abs(result[..., :3].astype(int) - np.asarray(Image.open(source))).mean() > 5


def test_generate_paints_a_grid_and_walks(page):
    page.get_by_role("tab", name="generate").click()
    _slide(page, "count", 2)
    page.locator("#generate-paint").click()
    (grid,) = _download(page, "#generate-grid")
    assert grid.ndim == 3 and grid.shape[1] > grid.shape[0]  # two pictures side by side
    assert grid.std() > 5  # pictures, not a flat sheet
    _slide(page, "frames", 8)
    page.locator("#generate-walk").click()
    links = page.locator("#generate-animation a[href]")
    links.first.wait_for(timeout=LONG)
    walk = Image.open(io.BytesIO(page.request.get(links.first.get_attribute("href")).body()))
    assert walk.format == "GIF" and walk.n_frames == 8


def test_a_non_image_is_one_line_in_the_page(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture at all\n")
    page.get_by_role("tab", name="restore").click()
    page.locator("#restore-upload input[type=file]").set_input_files(str(fake))
    page.get_by_text("notes.png: not an image file").wait_for(timeout=LONG)
    assert str(tmp_path) not in page.content() and "artgan-studio-" not in page.inner_text(
        "body")
    page.get_by_role("tab", name="style-transfer").click()  # the page is still alive
    page.locator("#style-transfer-run").wait_for()


def test_the_temporary_folder_goes_with_the_studio(tmp_path):
    from artgan.studio import running

    with running("127.0.0.1", _free_port()) as app:
        folder = Path(os.environ["GRADIO_TEMP_DIR"]).parent
        assert folder.is_dir() and app.local_url
    assert not folder.exists()
