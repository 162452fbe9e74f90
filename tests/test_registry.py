import pytest

from artgan.errors import UnknownNameError
from artgan.registry import Registry


def test_register_get_and_decorator():
    reg = Registry("thing")
    reg.register("a", 1)

    @reg.register("b")
    def b():
        return 2

    assert reg.get("a") == 1 and reg.get("b") is b
    assert reg.names() == ["a", "b"] and "a" in reg and len(reg) == 2


def test_unknown_name_suggests_close_match():
    reg = Registry("task")
    reg.register("style-transfer", object())
    with pytest.raises(UnknownNameError, match="did you mean 'style-transfer'") as info:
        reg.get("style-transfr")
    assert info.value.exit_code == 2


def test_duplicate_name_refused_unless_replace():
    reg = Registry("loss")
    reg.register("x", 1)
    with pytest.raises(ValueError):
        reg.register("x", 2)
    reg.register("x", 2, replace=True)
    assert reg.get("x") == 2
