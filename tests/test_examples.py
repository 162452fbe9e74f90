"""The creative-coding scripts in examples/ run as their docstrings say, with the shipped
models, and write what they promise."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "examples" / "photos"


def run_example(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_api_example_stylizes_pil_numpy_and_torch_inputs(tmp_path):
    printed = run_example("api_example.py", str(PHOTOS / "chelsea.jpg"), "out", cwd=tmp_path)
    assert "numpy: (" in printed and "torch: (3," in printed
    assert (tmp_path / "out" / "monet.png").is_file()
    assert (tmp_path / "out" / "round_trip.png").is_file()


def test_damage_and_restore_example_repairs_better_than_the_damage(tmp_path):
    printed = run_example("damage_and_restore.py", str(PHOTOS / "coffee.jpg"), "out", "thin",
                          cwd=tmp_path)
    written = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"damaged.png", "true_mask.png", "restored.png", "restored_true_mask.png",
            "comparison.jpg"} <= written
    line = next(text for text in printed.splitlines() if text.startswith("PSNR"))
    damaged, restored, with_mask = (float(part.split()[-2]) for part in line.split(","))
    assert restored > damaged and with_mask > damaged, line
