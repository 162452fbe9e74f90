"""Test isolation: no stray third-party plugins, a private ARTGAN_HOME, small thread counts.

Set at import so that CLI subprocesses started by tests inherit the same environment.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["ARTGAN_LOAD_PLUGINS"] = ""
os.environ["ARTGAN_HOME"] = tempfile.mkdtemp(prefix="artgan-home-")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test sees plugins loaded under its own environment."""
    from artgan import plugins

    plugins.reset()
    yield
    plugins.reset()


def run_cli(*args: str, env: dict | None = None, cwd: str | Path | None = None):
    """Run ``python -m artgan ARGS`` in a subprocess, as a user would from a shell."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "artgan", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=300)


@pytest.fixture
def cli():
    return run_cli
