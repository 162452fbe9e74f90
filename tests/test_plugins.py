"""Third-party plugins: the example package installs, lists and runs; broken ones only warn."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "artgan-plugin-example"

BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "artgan-broken"
version = "0.0.1"
[project.entry-points.artgan]
explodes-on-import = "broken_import"
explodes-in-hook = "broken_hook"
exits-on-import = "exits_on_import"
[tool.setuptools]
py-modules = ["broken_import", "broken_hook", "exits_on_import"]
"""

BROKEN_HOOK = """
import artgan

@artgan.hookimpl
def register_tasks(register):
    raise RuntimeError("this plugin is broken on purpose")
"""


def pip_install(source: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(source)], check=True)


def files_under(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time (ns)."""
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns
            for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def example_install(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """The example installed from a copy (a build writes ``build/`` and ``*.egg-info`` beside
    its sources), and what the install wrote or changed in ``examples/`` (nothing)."""
    before = files_under(EXAMPLE)
    source = tmp_path_factory.mktemp("example-source") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path_factory.mktemp("example-site")
    pip_install(source, site)
    after = files_under(EXAMPLE)
    return site, {name: time for name, time in after.items() if before.get(name) != time}


@pytest.fixture(scope="module")
def example_site(example_install) -> Path:
    return example_install[0]


def test_installing_the_example_writes_nothing_into_examples(example_install):
    _, written = example_install
    assert not written, f"written into {EXAMPLE}: {sorted(written)[:5]}"


def test_example_plugin_is_listed_and_runs(example_site, tmp_path):
    env = {"PYTHONPATH": str(example_site), "ARTGAN_LOAD_PLUGINS": "artgan-plugin-example"}
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    example = next(p for p in listed if p["name"] == "posterize")
    assert example["distribution"] == "artgan-plugin-example" and not example["builtin"]
    assert example["tasks"] == ["posterize"] and "register_tasks" in example["hooks"]
    assert "posterize" in run_cli("tasks", env=env).stdout

    source = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), np.uint8)).save(source)
    before = source.read_bytes()
    result = run_cli("run", "posterize", "--levels", "2", str(source), "--out",
                 str(tmp_path / "out.png"), env=env)
    assert result.returncode == 0, result.stderr
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (12, 16, 3) and set(np.unique(out)) <= {0, 255}
    assert source.read_bytes() == before


def test_load_plugins_variable_keeps_third_party_out(example_site):
    env = {"PYTHONPATH": str(example_site), "ARTGAN_LOAD_PLUGINS": ""}
    assert "posterize" not in run_cli("tasks", env=env).stdout
    result = run_cli("run", "posterise", "x.png", env=env)
    assert result.returncode == 2


def test_broken_plugins_warn_and_the_cli_keeps_working(tmp_path):
    package = tmp_path / "broken"
    package.mkdir()
    (package / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (package / "broken_import.py").write_text("raise ImportError('missing dependency xyz')\n")
    (package / "broken_hook.py").write_text(BROKEN_HOOK)
    (package / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    site = tmp_path / "site"
    pip_install(package, site)
    env = {"PYTHONPATH": str(site), "ARTGAN_LOAD_PLUGINS": "artgan-broken"}
    result = run_cli("tasks", env=env)
    assert result.returncode == 0
    assert "style-transfer" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, result.stderr
    by_plugin = {w.split("'")[1]: w for w in warnings}
    assert "missing dependency xyz" in by_plugin["explodes-on-import"]
    assert "register_tasks" in by_plugin["explodes-in-hook"]
    assert "SystemExit: 3" in by_plugin["exits-on-import"]
    assert "Traceback" not in result.stderr
    listed = json.loads(run_cli("plugins", "--json", env=env).stdout)
    assert any(p["name"] == "style-transfer" for p in listed)


def test_commands_that_do_not_train_leave_the_trainer_unimported(tmp_path):
    """Every command loads every plugin; the trainer's imports (torchvision alone takes
    seconds, kornia 0.1-0.2 s) must wait until something trains, and OpenVINO's until it
    runs something, or each command starts that much slower."""
    Image.new("RGB", (40, 36), "teal").save(tmp_path / "photo.png")
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from artgan.cli import cli\n"
        "for args in (['--help'], ['tasks'], ['models'], ['restore', '--help'],\n"
        "             ['run', 'style-transfer', '--backend', 'torch', 'photo.png']):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, (args, result.output)\n"
        "heavy = ('torchvision', 'artgan.train.trainer', 'kornia', 'openvino')\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert (tmp_path / "photo.style-transfer.png").is_file()
    assert done.stdout.strip() == ""
