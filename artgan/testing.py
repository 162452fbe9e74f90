"""A pytest plugin for plugin authors: the ``artgan_env`` fixture.

Installed with artgan (``pytest11`` entry point), so any test suite can ask for it. It
gives a test its own model folder (``ARTGAN_HOME``), loads only artgan's built-in plugins
whatever else is installed, and lets the test add plugin objects as if they were
installed. The plugin state is reset before and after, so nothing leaks between tests::

    def test_my_task(artgan_env):
        artgan_env.install(my_plugin)          # a module with @artgan.hookimpl functions
        assert "my-task" in artgan.tasks()
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from artgan import plugins


class ArtganEnvironment:
    """What ``artgan_env`` gives a test: its model folder and a way to install plugins."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch):
        self.home = home
        self._monkeypatch = monkeypatch
        self._installed: list[SimpleNamespace] = []
        self._builtin = [entry for entry in plugins.metadata.entry_points(group="artgan")
                         if plugins._distribution(entry) == plugins.BUILTIN_DISTRIBUTION]
        monkeypatch.setattr(plugins.metadata, "entry_points", self._entry_points)
        monkeypatch.setenv("ARTGAN_HOME", str(home))
        monkeypatch.delenv("ARTGAN_LOAD_PLUGINS", raising=False)
        monkeypatch.delenv("ARTGAN_ALLOW_OVERRIDE", raising=False)

    @property
    def models(self) -> Path:
        """The user model folder (``$ARTGAN_HOME/models``): ``<task>/<name>.safetensors``."""
        return self.home / "models"

    def install(self, plugin: object, name: str | None = None,
                distribution: str = "artgan-test-plugin") -> None:
        """Load ``plugin`` (a module or object with hook implementations) as if pip had
        installed it under the entry-point name ``name``; the next use loads it."""
        name = name or getattr(plugin, "__name__", type(plugin).__name__)
        dist = SimpleNamespace(name=distribution, version="0")
        self._installed.append(SimpleNamespace(name=name, load=lambda: plugin, dist=dist))
        plugins.reset()

    def _entry_points(self, group: str) -> list:
        return [*self._builtin, *self._installed] if group == "artgan" else []


@pytest.fixture
def artgan_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Iterator[ArtganEnvironment]:
    """An isolated artgan: own ``ARTGAN_HOME``, built-in plugins plus what the test installs."""
    plugins.reset()
    yield ArtganEnvironment(tmp_path / "artgan-home", monkeypatch)
    plugins.reset()
