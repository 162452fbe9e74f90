"""artgan studio as a user meets it: how soon the page is ready, and a restore round trip
in the browser against the CLI doing the same work.

    PYTHONPATH=.:plugins python benchmarks/bench_studio.py [--size 1024] [--repeat 3] \
        [--chromium /usr/bin/chromium] [--screenshots docs/images/studio/]

Needs gradio, playwright and a Chromium (the distribution's package). Starts
``python -m artgan studio`` on a free port and drives headless Chromium with Playwright:

- **ready**: seconds from starting the process until the page shows its tabs;
- **restore round trip**: ``examples/photos/coffee.jpg`` at ``--size`` px on its longer
  side, damaged by the seeded synthesiser (medium), is uploaded; the detected damage
  appears as the mask; a brush stroke is added; Restore; the restored picture is
  downloaded. Timed: upload until the mask is shown (detection), and Restore until the
  download is there (repair). The CLI does the same work as two processes on the same
  file: ``artgan restore x.png --detect-only`` (detection) and
  ``artgan restore x.png --mask m.png`` with the mask the studio used (repair); each
  includes starting Python and loading the model, which the studio has done already.

With ``--screenshots DIR`` it also saves a picture of each built-in tab after use. The
CPU is named beside the figures; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from statistics import median

import numpy as np
import torch
from bench_style import cpu_description
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "examples" / "photos"
LONG = 300_000  # ms


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def damaged_picture(size: int, folder: Path) -> Path:
    from artgan_restore.damage import damaged_scan

    photo = Image.open(PHOTOS / "coffee.jpg").convert("RGB")
    scale = size / max(photo.size)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)),
                         Image.Resampling.LANCZOS)
    damaged, _ = damaged_scan(torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1),
                              "medium", seed=1)
    path = folder / "coffee_damaged.png"
    Image.fromarray(damaged.permute(1, 2, 0).numpy()).save(path)
    return path


def start_studio(port: int, env: dict) -> tuple[subprocess.Popen, float]:
    """The studio's process and when it was started."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "artgan", "studio", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return process, started


def wait_for_server(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the studio exited: {process.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the studio did not answer within 120 s")


def stroke(page) -> None:
    """A short diagonal brush stroke across the middle of the mask editor."""
    box = page.locator("#restore-editor canvas").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(12):
        page.mouse.move(x + 8 * step, y + 3 * step)
    page.mouse.up()


def download(page, selector: str) -> list[bytes]:
    links = page.locator(f"{selector} a[href]")
    links.first.wait_for(timeout=LONG)
    return [page.request.get(links.nth(i).get_attribute("href")).body()
            for i in range(links.count())]


def studio_round_trip(page, url: str, picture: Path) -> tuple[float, float, bytes]:
    """(detection s, repair s, the mask used) for one upload-stroke-restore on a fresh page."""
    page.goto(url)
    page.get_by_role("tab", name="restore").click()
    start = time.perf_counter()
    page.locator("#restore-upload input[type=file]").set_input_files(str(picture))
    page.locator("#restore-found", has_text="amage found").wait_for(timeout=LONG)
    detect = time.perf_counter() - start
    stroke(page)
    start = time.perf_counter()
    page.locator("#restore-run").click()
    restored, mask = download(page, "#restore-download")
    repair = time.perf_counter() - start
    assert Image.open(io.BytesIO(restored)).size == Image.open(picture).size
    return detect, repair, mask


def cli_seconds(*args: str, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "artgan", *args], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"artgan {' '.join(args)} failed: {done.stderr.strip()}")
    return time.perf_counter() - start


def screenshots(page, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.get_by_role("tab", name="restore").click()
    page.screenshot(path=str(folder / "restore.jpg"), full_page=True, quality=85)
    page.get_by_role("tab", name="style-transfer").click()
    page.locator("#style-transfer-upload input[type=file]").set_input_files(
        str(PHOTOS / "chelsea.jpg"))
    page.locator("#style-transfer-run").click()
    download(page, "#style-transfer-download")
    page.screenshot(path=str(folder / "style-transfer.jpg"), full_page=True, quality=85)
    page.get_by_role("tab", name="generate").click()
    page.locator("#generate-paint").click()
    download(page, "#generate-grid")
    page.screenshot(path=str(folder / "generate.jpg"), full_page=True, quality=85)
    print(f"screenshots of the three tabs in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        picture = damaged_picture(args.size, folder)
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        process, started = start_studio(port, env)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium,
                                                     args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                wait_for_server(url, process)
                page.goto(url)
                page.get_by_role("tab", name="restore").wait_for()
                ready = time.perf_counter() - started
                runs = [studio_round_trip(page, url, picture) for _ in range(args.repeat)]
                if args.screenshots:
                    screenshots(page, args.screenshots)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
        mask_path = folder / "mask.png"
        mask_path.write_bytes(runs[-1][2])
        cli_detect = [cli_seconds("restore", str(picture), "--detect-only", "--out",
                                  str(folder / f"found{i}.png"), env=env)
                      for i in range(args.repeat)]
        cli_repair = [cli_seconds("restore", str(picture), "--mask", str(mask_path), "--out",
                                  str(folder / f"fixed{i}.png"), env=env)
                      for i in range(args.repeat)]
    width, height = Image.open(PHOTOS / "coffee.jpg").size
    scale = args.size / max(width, height)
    print(f"\nartgan studio on {cpu_description()}, torch {torch.__version__}; "
          f"{round(width * scale)}x{round(height * scale)} px, median of {args.repeat}\n")
    print("| measure | studio (s) | CLI (s) | studio / CLI |")
    print("|---|---:|---:|---:|")
    print(f"| page ready after start | {ready:.1f} | | |")
    rows = [("detect (upload to mask shown)", [r[0] for r in runs], cli_detect),
            ("repair (Restore to download)", [r[1] for r in runs], cli_repair),
            ("round trip (both)", [r[0] + r[1] for r in runs],
             [a + b for a, b in zip(cli_detect, cli_repair, strict=True)])]
    for name, studio, cli in rows:
        print(f"| {name} | {median(studio):.2f} | {median(cli):.2f} | "
              f"{median(studio) / median(cli):.2f}x |")


if __name__ == "__main__":
    main()
