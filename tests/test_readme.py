"""The README as a user reads it: its Python runs as written, its set-up is the two commands,
its table of shipped models is what ``models/`` holds, and its example script runs as given."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def run_python(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` as a script from ``cwd``, where ``examples/`` is the repository's."""
    (cwd / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    script = cwd / "snippet.py"
    script.write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, "-W", "error::UserWarning", str(script), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("number", range(len(PYTHON_BLOCKS)))
def test_every_python_snippet_runs_as_written(number, tmp_path):
    done = run_python(PYTHON_BLOCKS[number], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]


def test_python_snippets_exist():
    assert len(PYTHON_BLOCKS) >= 2


def test_set_up_is_two_commands_one_for_the_job_and_one_for_the_tests():
    blocks = re.findall(r"```(\w*)\n(.*?)```", section("Set-up"), flags=re.S)
    assert [language for language, _ in blocks] == ["bash", "bash"]
    assert all(code.count("\n") == 1 for _, code in blocks), "one line each"
    assert "<!-- main-command -->" in section("Set-up") and "<!-- test-command -->" in README
    assert "--index-url https://download.pytorch.org/whl/cpu" in section("Set-up")


def test_the_models_table_lists_exactly_the_shipped_files():
    rows = re.findall(r"^\| (\S+) \| `([^`]+)` \| ([\d.]+) MB \|.*\[`(models/[^`]+)`\]",
                      section("Models and the model store"), flags=re.M)
    listed = {(task, name): (float(size), card) for task, name, size, card in rows}
    shipped = {(path.parent.name, path.stem): path for path in ROOT.glob("models/*/*.safetensors")}
    assert set(listed) == set(shipped)
    for key, path in shipped.items():
        size, card = listed[key]
        assert size == round(path.stat().st_size / 1e6, 1), key
        assert card == path.with_suffix(".md").relative_to(ROOT).as_posix()


def test_options_the_readme_names_for_validation_exist():
    assert "--validate PHOTOS" not in README
    for task in ("style-transfer", "restore"):
        done = subprocess.run([sys.executable, "-m", "artgan", "train", task, "--help"],
                              capture_output=True, text=True, timeout=300)
        assert "--validate N" in done.stdout and "--validate-every N" in done.stdout


def test_api_example_runs_as_the_readme_gives_it_and_without_arguments(tmp_path):
    command = re.search(r"`python (examples/api_example\.py[^`]*)`", README).group(1).split()
    given = tmp_path / "given"
    given.mkdir()
    (given / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    for cwd, args in ((given, command[1:]), (tmp_path / "bare", [])):
        cwd.mkdir(exist_ok=True)
        done = subprocess.run([sys.executable, str(ROOT / command[0]), *args],
                              capture_output=True, text=True, cwd=cwd, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (cwd / "out" / "monet.png").is_file() and (cwd / "out" / "round_trip.png").is_file()


def test_tiling_check_prints_the_figures_the_readme_quotes(tmp_path):
    assert "python examples/tiling_check.py examples/photos/*.jpg --size 768" in README
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "tiling_check.py"),
                           str(ROOT / "examples" / "photos" / "chelsea.jpg"), "--size", "200",
                           "--tile", "160"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"--tile 160: mean \d+\.\d\d/255, max \d+/255", done.stdout)
    assert "--tile 160 --overlap 64: mean over 1 pictures" in done.stdout
