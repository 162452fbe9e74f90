"""The plugin manager: finds plugins through entry points and fills every registry.

Everything plugins provide (tasks, models, architectures, losses, augmentations, studio
tabs, CLI commands) lives in one state, loaded on first use and forgotten by ``reset()``, in the
manner of simonw/llm. artgan's own losses and augmentations come from ``artgan.builtins``
through the same hooks, and the built-in tasks are plugins under the same ``artgan``
entry-point group as any other, registered by artgan's own distribution.

``ARTGAN_LOAD_PLUGINS`` (comma list of plugin or distribution names; empty means none)
restricts which *third-party* plugins load. A plugin that fails to import or raises inside
a hook, even ``SystemExit``, costs one warning line naming it; the rest keeps working (only
Ctrl-C stops artgan).

Every name (task, architecture, loss, augmentation, model, CLI command) belongs to the first
plugin that registers it, and built-in plugins always register first, then third-party ones
by name, whatever order the entry points come in. A later plugin registering a taken name
gets a warning and keeps its other names; it replaces the name only if the user names it in
``ARTGAN_ALLOW_OVERRIDE`` (comma list of plugin or distribution names, like
``ARTGAN_LOAD_PLUGINS``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import pluggy

from artgan import hookspecs
from artgan.registry import Registry

BUILTIN_DISTRIBUTION = "artgan"
CORE = "artgan"  # the plugin name of ``artgan.builtins``
KINDS = ("task", "model", "architecture", "loss", "augmentation", "studio_tab")
# the kinds gathered from their hook on first use, not when plugins load: their objects are
# torch code, whose import (1.2 s) a command that runs no torch network should not pay for
# (``artgan --help``, ``artgan models``, a run on the OpenVINO backend)
GATHERED_ON_USE = {"architecture": "register_architectures", "loss": "register_losses",
                   "augmentation": "register_augmentations",
                   "studio_tab": "register_studio_tabs"}


@dataclass
class PluginRecord:
    """What ``artgan plugins`` reports about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegisteredModel:
    """A model file a plugin registered; ``builtin`` ones are the models artgan ships."""

    name: str
    task: str
    path: Path
    builtin: bool


class _State:
    """Everything loaded from plugins, built once per process on first use."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager("artgan")
        self.manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}  # in precedence order, built-ins first
        self.registries = {kind: Registry(kind) for kind in KINDS}  # models: "task/name" keys
        self.commands: Registry[click.Command] | None = None  # on the CLI's first use
        self.gathered: set[str] = set()  # which of GATHERED_ON_USE have been
        self.owners: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin holding it


_state: _State | None = None
_GATHERING = threading.RLock()  # re-entrant: a hook may look up another kind


def warn(message: str) -> None:
    """One warning line on stderr, the way broken plugins and skipped files are reported."""
    print(f"warning: {message}", file=sys.stderr)


def _listed(variable: str, names: set[str], unset: bool) -> bool:
    """Whether the comma list in ``$variable`` names one of ``names`` (``unset`` if absent)."""
    value = os.environ.get(variable)
    if value is None:
        return unset
    return bool({n.strip() for n in value.split(",")} & names - {""})


def _distribution(entry: metadata.EntryPoint) -> str | None:
    return entry.dist.name if entry.dist else None


def _precedence(entry: metadata.EntryPoint) -> tuple[bool, str, str]:
    """Built-ins first, then by name: who registers a name first keeps it (see ``_claim``)."""
    dist = _distribution(entry)
    return dist != BUILTIN_DISTRIBUTION, entry.name, dist or ""


def _isolated(failure: str, call: Callable[..., object], *args: object) -> None:
    """Run plugin code; whatever it raises, ``sys.exit`` included, becomes one warning line
    starting with ``failure`` instead of ending the command. Ctrl-C still stops artgan."""
    try:
        call(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a broken plugin must not take artgan down
        detail = str(exc).strip().splitlines()
        warn(f"{failure}: {type(exc).__name__}" + (f": {detail[0]}" if detail else ""))


def _load() -> _State:
    from artgan import __version__, builtins

    state = _State()
    _register(state, builtins, CORE, BUILTIN_DISTRIBUTION, __version__)
    for entry in sorted(metadata.entry_points(group="artgan"), key=_precedence):
        dist = _distribution(entry)
        if dist == BUILTIN_DISTRIBUTION or _listed("ARTGAN_LOAD_PLUGINS", {entry.name, dist or ""},
                                                   unset=True):
            _isolated(f"plugin {entry.name!r} from {dist} could not be loaded",
                      _load_entry, state, entry)
    registries = state.registries
    _call(state, "register_tasks", lambda plugin: lambda task: _claim(
        state, registries["task"], plugin, task.name, task))
    _call(state, "register_models", lambda plugin: lambda name, task, path: _claim(
        state, registries["model"], plugin, f"{task}/{name}",
        RegisteredModel(name, task, Path(path), state.records[plugin].builtin)))
    for (kind, name), plugin in state.owners.items():
        if kind == "task":
            state.records[plugin].tasks.append(name)
    return state


def _load_entry(state: _State, entry: metadata.EntryPoint) -> None:
    version = entry.dist.version if entry.dist else None
    _register(state, entry.load(), entry.name, _distribution(entry), version)


def _register(state: _State, plugin: object, name: str, dist: str | None,
              version: str | None) -> None:
    state.manager.register(plugin, name=name)
    hooks = sorted(i.name for i in state.manager.get_hookcallers(plugin) or [])
    state.records[name] = PluginRecord(name, dist, version, dist == BUILTIN_DISTRIBUTION, hooks)


def _claim(state: _State, registry: Registry, plugin: str, name: str, item: object) -> None:
    """Register ``item`` as ``name`` for ``plugin``, unless another plugin (or artgan itself)
    holds the name and the user did not allow ``plugin`` to override it."""
    if name in registry and registry.get(name) is not item:
        record = state.records[plugin]
        if not _listed("ARTGAN_ALLOW_OVERRIDE", {plugin, record.distribution or ""},
                       unset=False):
            owner = state.owners.get((registry.kind, name))
            holder = f"plugin {owner!r}" if owner else "artgan"
            warn(f"plugin {plugin!r} cannot register {registry.kind} {name!r}, which "
                 f"{holder} holds; ARTGAN_ALLOW_OVERRIDE={plugin} would let it replace it")
            return
    registry.register(name, item, replace=True)
    state.owners[(registry.kind, name)] = plugin


def _call(state: _State, hook: str, argument_for: Callable[[str], object]) -> None:
    """Call ``hook`` on each plugin separately so one that raises cannot stop the others.

    ``argument_for(plugin_name)`` gives the value passed to that plugin's implementation.
    Plugins go in precedence order, whatever pluggy's ``tryfirst``/``trylast`` say.
    """
    rank = {name: i for i, name in enumerate(state.records)}
    impls = getattr(state.manager.hook, hook).get_hookimpls()
    for impl in sorted(impls, key=lambda impl: rank.get(impl.plugin_name, len(rank))):
        _isolated(f"plugin {impl.plugin_name!r} failed in {hook}", impl.function,
                  argument_for(impl.plugin_name))


class _CommandSink(click.Group):
    """The group a plugin's ``register_commands`` adds to: each command it adds is claimed
    like any other name, so a plugin cannot replace ``run`` or another plugin's command."""

    def __init__(self, state: _State, plugin: str):
        super().__init__("artgan")
        self.state, self.plugin = state, plugin

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:
            raise ValueError("a command needs a name")
        assert self.state.commands is not None
        _claim(self.state, self.state.commands, self.plugin, name, cmd)


def commands(own: dict[str, click.Command]) -> Registry[click.Command]:
    """The CLI's commands: ``own`` (artgan's fixed ones, which nobody can take), then what
    every plugin's ``register_commands`` adds, gathered on the CLI's first call."""
    loaded = state()
    if loaded.commands is None:
        loaded.commands = Registry("command")
        for name, command in own.items():
            loaded.commands.register(name, command)
            loaded.owners[("command", name)] = CORE
        _call(loaded, "register_commands", lambda plugin: _CommandSink(loaded, plugin))
    return loaded.commands


def state() -> _State:
    global _state
    if _state is None:
        _state = _load()
    return _state


def reset() -> None:
    """Forget everything plugins registered (tests, and long-lived notebooks after ``pip
    install``): the next use loads them afresh."""
    global _state
    _state = None


def registry(kind: str) -> Registry:
    """The registry of one kind (``KINDS``), loading plugins on first use (and, for the kinds
    of ``GATHERED_ON_USE``, calling their hook on the first use of the kind)."""
    loaded = state()
    hook = GATHERED_ON_USE.get(kind)
    if hook is not None and kind not in loaded.gathered:
        with _GATHERING:  # another thread (the studio's) sees the registry only once filled
            if kind not in loaded.gathered:
                _call(loaded, hook, lambda plugin: partial(
                    _claim, loaded, loaded.registries[kind], plugin))
                loaded.gathered.add(kind)
    return loaded.registries[kind]


class RegistryView:
    """A module-level name for one registry of the current plugin state, such as
    ``artgan.losses.LOSSES``: it looks the state up on each use, so it never outlives a
    ``reset()`` and works in a fresh interpreter without any set-up."""

    def __init__(self, kind: str):
        self.kind = kind

    def get(self, name: str) -> Any:
        return registry(self.kind).get(name)

    def register(self, name: str, item: Any = None, *, replace: bool = False) -> Any:
        """Add ``item`` for this process (until ``reset()``); plugins use the hooks."""
        return registry(self.kind).register(name, item, replace=replace)

    def unregister(self, name: str) -> None:
        registry(self.kind).unregister(name)

    def names(self) -> list[str]:
        return registry(self.kind).names()

    def __contains__(self, name: object) -> bool:
        return name in registry(self.kind)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(registry(self.kind))


def get_task(name: str):
    """The task registered as ``name``; unknown names raise with a suggestion."""
    return registry("task").get(name)


def task_names() -> list[str]:
    return registry("task").names()


def plugin_records() -> list[PluginRecord]:
    return sorted(state().records.values(), key=lambda r: (not r.builtin, r.name))


def registered_models() -> list[RegisteredModel]:
    models = registry("model")
    return [models.get(key) for key in models]
