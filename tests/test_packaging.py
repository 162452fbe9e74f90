"""What `pip install .` (not editable) ships: every package of the source tree."""

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def test_every_core_package_is_listed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "artgan").rglob("__init__.py")}
    assert found <= listed, f"missing from [tool.setuptools] packages: {found - listed}"
