"""The ``artgan`` command line.

Task commands are built from the tasks themselves: ``artgan run TASK`` takes the options
that ``Task.run_options()`` declares and ``artgan train TASK`` those of ``train_options()``,
so a plugin's task gets a complete CLI without touching this file. Plugins add top-level
commands through ``register_commands`` (the built-in ``restore`` and ``generate``
shortcuts are ``task_command(TASK, "run")`` added that way); the fixed commands here are
never replaced. User errors print one line and exit non-zero; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import atexit
import gc
import json
import subprocess
import sys
import traceback
from functools import cache

import click

from artgan import __version__, export, plugins, store
from artgan.errors import ArtganError, UnknownNameError


class TaskCommands(click.Group):
    """A group whose subcommands are the registered tasks (``run`` or ``train``)."""

    def __init__(self, *args, mode: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = plugins.task_names()
        if self.mode == "train":
            names = [n for n in names if plugins.get_task(n).train_options()]
        return names

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        try:
            task = plugins.get_task(name)
        except UnknownNameError as exc:
            raise click.UsageError(str(exc), ctx) from None
        return task_command(task, self.mode)

    def resolve_command(self, ctx, args):
        # click's own "no such command" would hide our did-you-mean message
        command = self.get_command(ctx, args[0])
        return args[0], command, args[1:]


@cache  # registered once per process
def freeze_at_exit() -> None:
    """Have the interpreter's garbage collections at exit pass over every object still
    alive then (``gc.freeze`` at exit, before the modules are torn down). Those collections
    walk all of torch's objects, for nothing: the process is ending. A 12-megapixel
    ``artgan restore`` took 0.70 s from writing its picture to having exited, 0.37 s with
    this (AMD EPYC, OpenVINO); a process that only imports torch, 0.47 -> 0.15 s.

    The cost: an object kept alive only by a reference cycle is not finalised at exit, so a
    file left open in one would lose what it buffered. Task runs write their pictures
    through ``artgan.imageio`` (closed and renamed into place before the run returns), so
    only ``run`` commands register it; training, whose loggers and monitors belong to other
    libraries, does not."""
    atexit.register(gc.freeze)


def task_command(task, mode: str, name: str | None = None) -> click.Command:
    """The click command that runs (``mode`` "run") or trains ("train") ``task``, named
    ``name`` (default: the task's): what a plugin adds in ``register_commands`` to give its
    task a top-level shortcut."""
    if mode == "train":
        params = task.train_options()
        if not params:
            raise click.UsageError(f"task {task.name!r} cannot be trained")

        def callback(**options):
            path = task.train(**options)
            click.echo(f"model written to {path}")
    else:
        params = task.run_options()

        def callback(**options):
            freeze_at_exit()
            sys.exit(task.run(**options))

    return click.Command(name or task.name, params=params, callback=callback,
                         help=task.description, short_help=task.description)


class ArtganCLI(click.Group):
    """The top-level group: artgan's fixed commands, then those plugins register."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return plugins.commands(self.commands).names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        found = plugins.commands(self.commands)
        return found.get(name) if name in found else None


@click.group(cls=ArtganCLI, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="artgan")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Make and repair art with generative adversarial networks."""
    ctx.obj = {"debug": debug}


@cli.group(cls=TaskCommands, mode="run")
def run() -> None:
    """Run a task on images: artgan run TASK [OPTIONS] INPUTS..."""


@cli.group(cls=TaskCommands, mode="train")
def train() -> None:
    """Train a model for a task: artgan train TASK [OPTIONS]."""


@cli.command()
def tasks() -> None:
    """List the available tasks."""
    for name in plugins.task_names():
        click.echo(f"{name:16} {plugins.get_task(name).description}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_plugins(as_json: bool) -> None:
    """List loaded plugins with their hooks and tasks."""
    records = plugins.plugin_records()
    if as_json:
        click.echo(json.dumps([vars(r) for r in records], indent=2))
        return
    for record in records:
        kind = "built-in" if record.builtin else record.distribution
        click.echo(f"{record.name} {record.version or ''} ({kind})")
        click.echo(f"  hooks: {', '.join(record.hooks) or '-'}")
        click.echo(f"  tasks: {', '.join(record.tasks) or '-'}")


@cli.command()
@click.option("--task", "task_name", help="Only models of this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(task_name: str | None, as_json: bool) -> None:
    """List the models artgan can find, from user, plugin and shipped sources.

    Names and cards come from downloaded files: the text listing shows their control
    characters escaped (JSON escapes them itself), so a card cannot drive the terminal.
    """
    if task_name is not None:
        plugins.get_task(task_name)
    found = store.list_models(task_name)
    if as_json:
        rows = [{"name": m.name, "task": m.task, "path": str(m.path), "size_bytes": m.size_bytes,
                 "source": m.source, "card": m.card} for m in found]
        click.echo(json.dumps(rows, indent=2))
        return
    if not found:
        click.echo("no models found", err=True)
    for m in found:
        size = f"{m.size_bytes / 1e6:6.1f} MB"
        line = f"{m.task:15} {m.name:12} {size}  {m.source:8} {m.summary()}"
        click.echo(store.printable(line))


@cli.command("eval")
@click.argument("real_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("fake_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--metric", "metrics", multiple=True, default=("swd",), show_default=True,
              help="swd, psnr, ssim, fid, kid (repeatable).")
@click.option("--size", type=click.IntRange(min=1), default=128, show_default=True,
              help="Images are resized to this size.")
@click.option("--inception-weights", type=click.Path(dir_okay=False),
              help="Local .safetensors Inception v3 weights, needed for fid and kid.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(real_dir, fake_dir, metrics, size, inception_weights, as_json) -> None:
    """Compare two image folders with offline metrics."""
    from artgan.metrics import evaluate as compute

    results = compute(real_dir, fake_dir, metrics=metrics, size=size,
                      inception_weights=inception_weights)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            click.echo(f"{key:10} {value:.4f}")


@cli.command("export")
@click.argument("task_name", metavar="TASK")
@click.argument("model")
@click.option("--format", "fmt", type=click.Choice(export.FORMATS), default="onnx",
              show_default=True, help='onnx (pip install "artgan[onnx]") or openvino IR, '
              'an .xml and its .bin (pip install "artgan[openvino]").')
@click.option("--out", "-o", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Folder for the files, one <model>.<network>.onnx (or .xml) per network "
              "(a style model's a2b and b2a, a restore model's detector and inpainter).")
@click.option("--size", type=click.IntRange(min=1), metavar="PX",
              help="The inpainter's fixed size (default: the model's working size); the "
              "side of the example pictures other networks are traced with.")
def export_model(task_name: str, model: str, fmt: str, out: str, size: int | None) -> None:
    """Export a model's networks to run without torch: artgan export TASK MODEL."""
    plugins.get_task(task_name)
    for path in export.export(task_name, model, out, fmt, size):
        click.echo(f"wrote {path}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to serve on; any other than this machine's own is warned about.")
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True)
@click.option("--device", help="Where networks run (default: each task's own choice).")
def studio(host: str, port: int, device: str | None) -> None:
    """Open artgan studio, a local web app for every task (pip install "artgan[studio]")."""
    from artgan.studio import serve

    serve(host, port, device)


@cli.command()
@click.argument("package")
def install(package: str) -> None:
    """Install a plugin package with pip into artgan's own Python environment."""
    result = subprocess.run([sys.executable, "-m", "pip", "install", package])
    if result.returncode:
        raise ArtganError(f"pip could not install {package!r}")
    plugins.reset()


def main() -> None:
    """Console entry point: run the CLI, turning user errors into one line and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except ArtganError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                   err=True)
        sys.exit(1)
