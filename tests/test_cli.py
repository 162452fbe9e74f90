"""The artgan command line as a user meets it: listings, help, errors and exit codes."""

import json

import pytest
from cli_process import imports_of

import artgan


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0 and artgan.__version__ in result.stdout


def test_plugins_json_lists_builtins(cli):
    result = cli("plugins", "--json")
    plugins = json.loads(result.stdout)
    builtin = {p["name"]: p for p in plugins if p["builtin"]}
    assert "style-transfer" in builtin
    assert builtin["style-transfer"]["tasks"] == ["style-transfer"]
    assert "register_tasks" in builtin["style-transfer"]["hooks"]


def test_tasks_lists_descriptions(cli):
    lines = cli("tasks").stdout.splitlines()
    assert any(line.startswith("style-transfer") and len(line.split()) > 2 for line in lines)


def test_unknown_task_suggests_and_exits_2(cli):
    result = cli("run", "style-transfr", "x.png")
    assert result.returncode == 2
    assert "did you mean 'style-transfer'" in result.stderr


def test_task_help_shows_its_own_options(cli):
    result = cli("run", "style-transfer", "--help")
    assert result.returncode == 0 and "--style" in result.stdout and "--tile" in result.stdout


def test_models_json_is_valid(cli):
    result = cli("models", "--json")
    assert result.returncode == 0
    assert isinstance(json.loads(result.stdout), list)


def test_models_unknown_task_exits_2(cli):
    result = cli("models", "--task", "restor")
    assert result.returncode == 2 and "unknown task 'restor'" in result.stderr


def test_user_error_is_one_line_without_traceback(cli, tmp_path):
    result = cli("run", "style-transfer", str(tmp_path / "missing.jpg"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "missing.jpg" in result.stderr


def test_debug_shows_the_traceback(cli, tmp_path):
    result = cli("--debug", "run", "style-transfer", str(tmp_path / "missing.jpg"))
    assert result.returncode == 1 and "Traceback" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["tasks"], ["models"], ["plugins"],
                                  ["run", "style-transfer", "--help"], ["restore", "--help"]])
def test_commands_that_run_no_network_do_not_import_torch(args):
    """torch's import is 1.2 s of every command that pays it: listing and help must not."""
    assert imports_of(args) == (0, set())
