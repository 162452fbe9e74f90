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


@pytest.fixture
def restore_cli(monkeypatch, capsys):
    """Run ``artgan ARGS`` in-process with only the restore task; returns (exit code,
    stderr). In-process: a new interpreter per command would cost seconds each."""
    from artgan_restore.task import RestoreTask

    from artgan import cli, plugins

    task = RestoreTask()
    monkeypatch.setattr(plugins, "task_names", lambda: ["restore"])
    monkeypatch.setattr(plugins, "get_task", lambda name: task)

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["artgan", *args])
        try:
            cli.main()
        except SystemExit as exit_:
            return exit_.code or 0, capsys.readouterr().err
        return 0, capsys.readouterr().err

    return run
