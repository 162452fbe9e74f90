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
    """Run ``python -m artgan ARGS`` in a subprocess, for what needs its own interpreter
    (another ``sys.path``, a kill); ``cli`` is the in-process and faster way."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "artgan", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=300)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run ``artgan ARGS`` in-process through the console entry point (``artgan.cli.main``,
    with its one-line errors and exit codes); returns a ``CompletedProcess`` as ``run_cli``
    does. ``env`` holds for the one command, with plugins loaded afresh under it."""
    from artgan import cli as command_line
    from artgan import plugins

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setattr(sys, "argv", ["artgan", *args])
            plugins.reset()
            capsys.readouterr()
            try:
                command_line.main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
            out, err = capsys.readouterr()
            plugins.reset()
        return subprocess.CompletedProcess(["artgan", *args], code, out, err)

    return run


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
