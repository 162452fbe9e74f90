"""Every registry lives in one plugin state, loaded on first use and cleared by reset():
nothing needs wiring by hand, and nothing a plugin registered outlives a reset."""

import subprocess
import sys
from types import SimpleNamespace

import pytest

import artgan
from artgan import plugins
from artgan.losses import LOSSES, AdversarialLoss
from artgan.nn import ARCHITECTURES


def test_a_shipped_model_loads_in_a_fresh_interpreter_without_set_up():
    code = ("from artgan import store\n"
            "loaded = store.load_model('monet', 'style-transfer')\n"
            "print(type(loaded.network).__name__, loaded.info.source)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ModuleDict", "shipped"]


def test_reset_clears_what_a_plugin_registered(monkeypatch):
    class Zero(AdversarialLoss):
        pass

    @artgan.hookimpl
    def register_losses(register):
        register("zero", Zero())

    plugin = SimpleNamespace(register_losses=register_losses)
    entry = SimpleNamespace(name="zero-plugin", load=lambda: plugin,
                            dist=SimpleNamespace(name="artgan-zero", version="1"))
    real = plugins.metadata.entry_points
    monkeypatch.setattr(plugins.metadata, "entry_points",
                        lambda group: [*real(group=group), entry])
    monkeypatch.setenv("ARTGAN_LOAD_PLUGINS", "zero-plugin")
    assert "zero" in LOSSES
    plugins.reset()  # what ``artgan install`` does: the plugin registers again, no clash
    assert isinstance(LOSSES.get("zero"), Zero)
    monkeypatch.setattr(plugins.metadata, "entry_points", real)
    plugins.reset()
    assert "zero" not in LOSSES and "hinge" in LOSSES


def test_what_python_code_registers_lasts_until_reset():
    ARCHITECTURES.register("test-lifecycle", lambda: None)
    assert "test-lifecycle" in ARCHITECTURES
    plugins.reset()
    assert "test-lifecycle" not in ARCHITECTURES and "cyclegan" in ARCHITECTURES


def test_builtin_models_come_through_register_models(artgan_env):
    shipped = {(m.task, m.name) for m in plugins.registered_models() if m.builtin}
    assert {("style-transfer", "monet"), ("restore", "general"), ("generate", "monet")} <= shipped
    assert {m.source for m in artgan.models()} == {"shipped"}


@pytest.mark.parametrize("task", ["generate", "restore", "style-transfer"])
def test_an_unknown_load_option_is_one_clear_error(task):
    with pytest.raises(artgan.ArtganError, match=f"unknown {task} option.*typo.*takes"):
        artgan.load(task, typo=1)
