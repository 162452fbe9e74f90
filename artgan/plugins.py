"""The plugin manager: finds plugins through entry points and fills the shared registries.

Built-in tasks are plugins too, registered under the same ``artgan`` entry-point group by
artgan's own distribution. ``ARTGAN_LOAD_PLUGINS`` (comma list of plugin or distribution
names; empty means none) restricts which *third-party* plugins load. A plugin that fails to
import or raises inside a hook, even ``SystemExit``, costs one warning line naming it; the
rest keeps working (only Ctrl-C stops artgan).

Every name (task, architecture, loss, augmentation, model) belongs to the first plugin that
registers it, and built-in plugins always register first, then third-party ones by name,
whatever order the entry points come in. A later plugin registering a taken name gets a
warning and keeps its other names; it replaces the name only if the user names it in
``ARTGAN_ALLOW_OVERRIDE`` (comma list of plugin or distribution names, like
``ARTGAN_LOAD_PLUGINS``), until the next ``reset()``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
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
        self.records: dict[str, PluginRecord] = {}  # in precedence order, built-ins first
        self.tasks: Registry = Registry("task")
        self.models: Registry[tuple[str, str, Path]] = Registry("model")  # "task/name" keys
        self.owners: dict[tuple[str, str], str] = {}  # (kind, name) -> plugin holding it
        self.replaced: list[tuple[Registry, str, object]] = []  # what overrides replaced


_state: _State | None = None


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
    state = _State()
    for entry in sorted(metadata.entry_points(group="artgan"), key=_precedence):
        dist = _distribution(entry)
        if dist == BUILTIN_DISTRIBUTION or _listed("ARTGAN_LOAD_PLUGINS", {entry.name, dist or ""},
                                                   unset=True):
            _isolated(f"plugin {entry.name!r} from {dist} could not be loaded",
                      _register, state, entry)
    _call(state, "register_architectures", lambda plugin: partial(
        _claim, state, _architectures(), plugin))
    _call(state, "register_losses", lambda plugin: partial(_claim, state, _losses(), plugin))
    _call(state, "register_augmentations", lambda plugin: partial(
        _claim, state, _augmentations(), plugin))
    _call(state, "register_tasks", lambda plugin: lambda task: _claim(
        state, state.tasks, plugin, task.name, task))
    _call(state, "register_models", lambda plugin: lambda name, task, path: _claim(
        state, state.models, plugin, f"{task}/{name}", (name, task, Path(path))))
    for (kind, name), plugin in state.owners.items():
        if kind == state.tasks.kind:
            state.records[plugin].tasks.append(name)
    return state


def _register(state: _State, entry: metadata.EntryPoint) -> None:
    plugin = entry.load()
    state.manager.register(plugin, name=entry.name)
    dist = _distribution(entry)
    version = entry.dist.version if entry.dist else None
    hooks = sorted(i.name for i in state.manager.get_hookcallers(plugin) or [])
    state.records[entry.name] = PluginRecord(entry.name, dist, version,
                                             dist == BUILTIN_DISTRIBUTION, hooks)


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
        state.replaced.append((registry, name, registry.get(name)))
    registry.register(name, item, replace=True)
    state.owners[(registry.kind, name)] = plugin


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
    Plugins go in precedence order, whatever pluggy's ``tryfirst``/``trylast`` say.
    """
    rank = {name: i for i, name in enumerate(state.records)}
    impls = getattr(state.manager.hook, hook).get_hookimpls()
    for impl in sorted(impls, key=lambda impl: rank.get(impl.plugin_name, len(rank))):
        _isolated(f"plugin {impl.plugin_name!r} failed in {hook}", impl.function,
                  argument_for(impl.plugin_name))


def call_hook(hook: str, argument: object) -> None:
    """Call one hook on every plugin with the same argument (e.g. the CLI group)."""
    _call(state(), hook, lambda plugin: argument)


def state() -> _State:
    global _state
    if _state is None:
        _state = _load()
    return _state


def reset() -> None:
    """Forget loaded plugins (tests and long-lived notebooks after ``pip install``), and
    put back what their overrides replaced in the shared registries."""
    global _state
    if _state is not None:
        for registry, name, item in reversed(_state.replaced):
            registry.register(name, item, replace=True)
    _state = None


def get_task(name: str):
    """The task registered as ``name``; unknown names raise with a suggestion."""
    return state().tasks.get(name)


def task_names() -> list[str]:
    return state().tasks.names()


def plugin_records() -> list[PluginRecord]:
    return sorted(state().records.values(), key=lambda r: (not r.builtin, r.name))


def registered_models() -> list[tuple[str, str, Path]]:
    return [state().models.get(key) for key in state().models]


def hook_manager() -> pluggy.PluginManager:
    return state().manager
