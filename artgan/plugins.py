"""The plugin manager: finds plugins through entry points and fills the shared registries.

Built-in tasks are plugins too, registered under the same ``artgan`` entry-point group by
artgan's own distribution. ``ARTGAN_LOAD_PLUGINS`` (comma list of plugin or distribution
names; empty means none) restricts which *third-party* plugins load. A plugin that fails to
import or raises inside a hook costs one warning line naming it; the rest keeps working.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pluggy

from artgan import hookspecs
from artgan.registry import Registry

BUILTIN_DISTRIBUTION = "artgan"


@dataclass
class PluginRecord:
    """What ``artgan plugins`` reports about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


class _State:
    """Everything loaded from plugins, built once per process on first use."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("artgan")
        self.manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.tasks: Registry = Registry("task")
        self.models: list[tuple[str, str, Path]] = []


_state: _State | None = None


def warn(message: str) -> None:
    """One warning line on stderr, the way broken plugins and skipped files are reported."""
    print(f"warning: {message}", file=sys.stderr)


def _allowed(names: set[str]) -> bool:
    allow = os.environ.get("ARTGAN_LOAD_PLUGINS")
    if allow is None:
        return True
    wanted = {n.strip() for n in allow.split(",") if n.strip()}
    return bool(wanted & names)


def _load() -> _State:
    state = _State()
    for entry in metadata.entry_points(group="artgan"):
        dist = entry.dist.name if entry.dist else None
        builtin = dist == BUILTIN_DISTRIBUTION
        if not builtin and not _allowed({entry.name, dist or ""}):
            continue
        try:
            plugin = entry.load()
            state.manager.register(plugin, name=entry.name)
        except Exception as exc:  # a broken plugin must not take artgan down
            warn(f"plugin {entry.name!r} could not be loaded: {type(exc).__name__}: {exc}")
            continue
        version = entry.dist.version if entry.dist else None
        hooks = sorted(i.name for i in state.manager.get_hookcallers(plugin) or [])
        state.records[entry.name] = PluginRecord(entry.name, dist, version, builtin, hooks)
    _call(state, "register_architectures", lambda plugin: _architectures().register)
    _call(state, "register_losses", lambda plugin: _losses().register)
    _call(state, "register_augmentations", lambda plugin: _augmentations().register)
    _call(state, "register_tasks", lambda plugin: lambda task: _add_task(state, plugin, task))
    _call(state, "register_models", lambda plugin: lambda name, task, path: state.models.append(
        (name, task, Path(path))))
    return state


def _add_task(state: _State, plugin: str, task) -> None:
    state.tasks.register(task.name, task)
    if plugin in state.records:
        state.records[plugin].tasks.append(task.name)


def _architectures() -> Registry:
    from artgan.nn import ARCHITECTURES

    return ARCHITECTURES


def _losses() -> Registry:
    from artgan.losses import LOSSES

    return LOSSES


def _augmentations() -> Registry:
    from artgan.augment import AUGMENTATIONS

    return AUGMENTATIONS


def _call(state: _State, hook: str, argument_for: Callable[[str], object]) -> None:
    """Call ``hook`` on each plugin separately so one that raises cannot stop the others.

    ``argument_for(plugin_name)`` gives the value passed to that plugin's implementation.
    """
    for impl in getattr(state.manager.hook, hook).get_hookimpls():
        try:
            impl.function(argument_for(impl.plugin_name))
        except Exception as exc:  # isolate plugin bugs
            warn(f"plugin {impl.plugin_name!r} failed in {hook}: {type(exc).__name__}: {exc}")


def call_hook(hook: str, argument: object) -> None:
    """Call one hook on every plugin with the same argument (e.g. the CLI group)."""
    _call(state(), hook, lambda plugin: argument)


def state() -> _State:
    global _state
    if _state is None:
        _state = _load()
    return _state


def reset() -> None:
    """Forget loaded plugins (tests and long-lived notebooks after ``pip install``)."""
    global _state
    _state = None


def get_task(name: str):
    """The task registered as ``name``; unknown names raise with a suggestion."""
    return state().tasks.get(name)


def task_names() -> list[str]:
    return state().tasks.names()


def plugin_records() -> list[PluginRecord]:
    return sorted(state().records.values(), key=lambda r: (not r.builtin, r.name))


def registered_models() -> list[tuple[str, str, Path]]:
    return list(state().models)


def hook_manager() -> pluggy.PluginManager:
    return state().manager

