"""Third-party plugins cannot take built-in names unless the user allows it, and a plugin
that exits or raises any ``BaseException`` costs one warning line, not the command.

Entry points are faked in-process: artgan's own (the built-ins) plus modules made here.
"""

import sys
import types
from importlib import metadata
from types import SimpleNamespace

import artgan_restore
import artgan_style_transfer
import click
import pytest
from click.testing import CliRunner

import artgan
from artgan import plugins
from artgan.augment import AUGMENTATIONS, BUILTIN_AUGMENTATIONS
from artgan.losses import BUILTIN_LOSSES, LOSSES
from artgan.nn import ARCHITECTURES

BUILTIN_ENTRY_POINTS = list(metadata.entry_points(group="artgan"))


class FakeEntryPoint:
    """The parts of an ``importlib.metadata.EntryPoint`` that artgan reads."""

    def __init__(self, name: str, load, dist: str = "artgan-evil"):
        self.name = name
        self.load = load
        self.dist = SimpleNamespace(name=dist, version="6.6.6")


def plugin_module(name: str, **hooks) -> types.ModuleType:
    """A plugin module whose hook implementations are ``hooks``."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return module


def evil_factory(**config):
    raise AssertionError("the built-in cyclegan must be used")


def evil_plugin() -> types.ModuleType:
    """Registers a name of every kind a built-in holds, plus one free task name."""

    @artgan.hookimpl(trylast=True)  # pluggy orders impls by this; precedence must not
    def register_tasks(register):
        register(SimpleNamespace(name="restore", description="evil"))
        register(SimpleNamespace(name="style-transfer", description="evil"))
        register(SimpleNamespace(name="evil-task", description="harmless"))

    @artgan.hookimpl
    def register_architectures(register):
        register("cyclegan", evil_factory)

    @artgan.hookimpl
    def register_losses(register):
        register("hinge", object())

    @artgan.hookimpl
    def register_augmentations(register):
        register("color", object())

    return plugin_module("artgan_evil", register_tasks=register_tasks,
                         register_architectures=register_architectures,
                         register_losses=register_losses,
                         register_augmentations=register_augmentations)


@pytest.fixture
def entry_points(monkeypatch):
    """Make ``metadata.entry_points`` list the built-ins and the given fakes in that order."""

    def install(*fakes: FakeEntryPoint, first: bool = False) -> None:
        ordered = [*fakes, *BUILTIN_ENTRY_POINTS] if first else [*BUILTIN_ENTRY_POINTS, *fakes]
        monkeypatch.setattr(metadata, "entry_points", lambda group: list(ordered))
        monkeypatch.setenv("ARTGAN_LOAD_PLUGINS", ",".join(f.dist.name for f in fakes))

    return install


def warnings_of(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize("first", [True, False], ids=["third-party-first", "builtins-first"])
def test_builtin_names_win_and_the_warning_names_the_third_party(entry_points, first, capsys):
    hinge, color = BUILTIN_LOSSES["hinge"], BUILTIN_AUGMENTATIONS["color"]
    entry_points(FakeEntryPoint("evil", evil_plugin), first=first)

    assert plugins.get_task("restore") is artgan_restore.TASK
    assert plugins.get_task("style-transfer") is artgan_style_transfer.TASK
    assert plugins.get_task("evil-task").description == "harmless"
    assert ARCHITECTURES.get("cyclegan") is artgan_style_transfer.cyclegan
    assert LOSSES.get("hinge") is hinge and AUGMENTATIONS.get("color") is color
    warnings = warnings_of(capsys)
    assert len(warnings) == 5, warnings
    assert all(w.startswith("warning: plugin 'evil' ") for w in warnings), warnings
    assert any("task 'restore'" in w and "plugin 'restore'" in w for w in warnings), warnings
    assert any("architecture 'cyclegan'" in w and "'style-transfer'" in w for w in warnings)
    tasks = {r.name: r.tasks for r in plugins.plugin_records()}
    assert tasks["evil"] == ["evil-task"] and tasks["restore"] == ["restore"]


@pytest.mark.parametrize("allow", ["evil", "artgan-evil", "other, evil"])
def test_override_only_when_the_user_names_the_plugin(entry_points, monkeypatch, allow, capsys):
    monkeypatch.setenv("ARTGAN_ALLOW_OVERRIDE", allow)
    entry_points(FakeEntryPoint("evil", evil_plugin), first=False)

    assert plugins.get_task("restore").description == "evil"
    assert ARCHITECTURES.get("cyclegan") is evil_factory
    assert warnings_of(capsys) == []
    tasks = {r.name: r.tasks for r in plugins.plugin_records()}
    assert tasks["restore"] == [] and "restore" in tasks["evil"]

    monkeypatch.delenv("ARTGAN_ALLOW_OVERRIDE")
    plugins.reset()  # the override lasts as long as the plugin state that made it
    assert ARCHITECTURES.get("cyclegan") is artgan_style_transfer.cyclegan


def test_a_third_party_entry_point_named_like_a_builtin_cannot_replace_it(entry_points,
                                                                          capsys):
    entry_points(FakeEntryPoint("restore", evil_plugin), first=True)

    assert plugins.get_task("restore") is artgan_restore.TASK
    restore = next(r for r in plugins.plugin_records() if r.name == "restore")
    assert restore.builtin and restore.distribution == "artgan"
    warnings = warnings_of(capsys)
    assert len(warnings) == 1 and "'restore'" in warnings[0] and "artgan-evil" in warnings[0]


def model_plugin(path: str):
    @artgan.hookimpl
    def register_models(register):
        register("shared-name", "restore", path)

    return lambda: plugin_module(f"plugin_{path}", register_models=register_models)


@pytest.mark.parametrize("first", [True, False])
def test_the_first_plugin_by_name_keeps_a_model_name_whatever_the_order(entry_points, first,
                                                                        capsys):
    a = FakeEntryPoint("a", model_plugin("a.safetensors"), dist="artgan-a")
    b = FakeEntryPoint("b", model_plugin("b.safetensors"), dist="artgan-b")
    entry_points(*((a, b) if first else (b, a)))

    shared = [m for m in plugins.registered_models() if m.name == "shared-name"]
    assert [str(m.path) for m in shared] == ["a.safetensors"] and not shared[0].builtin
    warnings = warnings_of(capsys)
    assert len(warnings) == 1 and "plugin 'b'" in warnings[0] and "plugin 'a'" in warnings[0]


class PluginGaveUp(BaseException):
    """Not an ``Exception``, like SystemExit, and not a KeyboardInterrupt."""


def exits(code):
    def load():
        sys.exit(code)

    return load


def gives_up():
    raise PluginGaveUp("no GPU here")


@pytest.mark.parametrize("load", [exits(3), exits(None), gives_up], ids=["3", "None", "base"])
def test_a_plugin_that_exits_at_import_only_warns(entry_points, load, capsys):
    entry_points(FakeEntryPoint("quitter", load))

    assert {"generate", "restore", "style-transfer"} <= set(plugins.task_names())
    warnings = warnings_of(capsys)
    assert len(warnings) == 1 and "'quitter'" in warnings[0], warnings


def test_a_plugin_that_exits_in_a_hook_only_warns(entry_points, capsys):
    @artgan.hookimpl
    def register_tasks(register):
        sys.exit("bye")

    quitter = plugin_module("quitter", register_tasks=register_tasks)
    entry_points(FakeEntryPoint("quitter", lambda: quitter))

    assert "restore" in plugins.task_names()
    warnings = warnings_of(capsys)
    assert len(warnings) == 1 and "'quitter'" in warnings[0] and "register_tasks" in warnings[0]
    assert "SystemExit: bye" in warnings[0]


def test_ctrl_c_while_loading_a_plugin_still_stops(entry_points):
    def interrupted():
        raise KeyboardInterrupt

    entry_points(FakeEntryPoint("slow", interrupted))
    with pytest.raises(KeyboardInterrupt):
        plugins.task_names()


def commands_plugin() -> types.ModuleType:
    """Adds one new top-level command and tries to take ``run`` and ``restore``."""

    @artgan.hookimpl
    def register_commands(cli):
        @cli.command("run")
        def hijacked_run():
            raise AssertionError("artgan's run must stay")

        cli.add_command(click.Command("restore", callback=hijacked_run.callback))

        @cli.command("hello")
        def hello():
            click.echo("hello from a plugin")

    return plugin_module("artgan_commands", register_commands=register_commands)


def test_a_plugin_adds_commands_but_cannot_replace_artgans_or_a_builtin_plugins(
        entry_points):
    from artgan.cli import cli

    entry_points(FakeEntryPoint("commands", commands_plugin))

    runner = CliRunner()
    hello = runner.invoke(cli, ["hello"])
    assert hello.stdout == "hello from a plugin\n"
    warnings = [line for line in hello.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, warnings
    assert any("command 'run'" in w and "plugin 'artgan'" in w for w in warnings), warnings
    assert any("command 'restore'" in w and "plugin 'restore'" in w for w in warnings), warnings
    listed = runner.invoke(cli, ["--help"]).output
    assert "hello" in listed and "restore" in listed and "run" in listed
    assert runner.invoke(cli, ["run", "--help"]).exit_code == 0
    assert "Find and repaint" in runner.invoke(cli, ["restore", "--help"]).output
