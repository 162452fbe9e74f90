"""artgan studio: a local web app with one tab per registered task (``artgan studio``).

An optional extra (``pip install "artgan[studio]"``) built on gradio, the field's usual
way to put a model in front of people who do not write commands. Each task's tab comes
from its declared options (``artgan.studio.tabs``), or from the plugin itself through the
``register_studio_tabs`` hook (restore's brush for masks). Nothing leaves the machine: no
analytics, no fonts or scripts from elsewhere, and by default only this machine can reach
the page. Files live in one temporary folder removed on exit (``artgan.studio.files``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from artgan import plugins, store
from artgan.errors import ArtganError
from artgan.imageio import Picture
from artgan.studio.files import Workspace, max_upload_bytes, read_upload
from artgan.task import Task, check_load_options

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
KEPT_PIPELINES = 2  # loaded models kept between requests (each may hold hundreds of MB)
OFFLINE = {  # set before gradio is imported: no analytics, no update checks, no hub calls
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
# gradio modules that copy GRADIO_TEMP_DIR when first imported (their DEFAULT_TEMP_DIR)
TEMP_DIR_COPIES = ("gradio.route_utils", "gradio.routes", "gradio.screen_recording_utils",
                   "gradio.mcp")


class Studio:
    """What every tab shares: the temporary folder, the device and the loaded models."""

    def __init__(self, workspace: Workspace, device: str | None = None):
        self.workspace = workspace
        self.device = device
        self._pipelines: OrderedDict[tuple, Any] = OrderedDict()

    def model_names(self, task: str) -> list[str]:
        """Every installed model of ``task``, shipped and the user's own."""
        return sorted({info.name for info in store.list_models(task)})

    def read(self, path: str | None) -> Picture:
        return read_upload(path)

    def checked_model(self, task: Task, model: str | None) -> str | None:
        """``model`` if it is one of ``task``'s installed names (None: the task's default).
        Every model choice from the page passes here, as loaders also accept a file path."""
        if model is not None and model not in self.model_names(task.name):
            raise ArtganError(f"unknown {task.name} model {model!r}")
        return model

    def pipeline(self, task: Task, model: str | None, options: dict[str, Any]) -> Any:
        """``task.load(model, **options)``, kept for the next request with the same choice."""
        model = self.checked_model(task, model)
        if self.device is not None and "device" in _parameters(task):
            options = {**options, "device": self.device}
        check_load_options(task, options)
        key = (task.name, model, tuple(sorted(options.items())))
        if key in self._pipelines:
            self._pipelines.move_to_end(key)
            return self._pipelines[key]
        loaded = task.load(model, **options)
        self._pipelines[key] = loaded
        while len(self._pipelines) > KEPT_PIPELINES:
            self._pipelines.popitem(last=False)
        return loaded


def build(studio: Studio) -> Any:
    """The gradio app: one tab per registered task, built-in tasks first."""
    import gradio as gr

    from artgan.studio.tabs import picture_tab, sampler_tab, takes_pictures

    custom = plugins.registry("studio_tab")
    with gr.Blocks(title="artgan studio", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:
        gr.Markdown("# artgan studio")
        for name in _tab_order():
            task = plugins.get_task(name)
            with gr.Tab(name, id=name, elem_id=f"tab-{name}"):
                if name in custom:
                    custom.get(name)(studio, task)
                elif takes_pictures(task):
                    picture_tab(studio, task)
                else:
                    sampler_tab(studio, task)
    return app


def serve(host: str = "127.0.0.1", port: int = 7860, device: str | None = None) -> None:
    """Serve the studio until Ctrl-C or SIGTERM (``artgan studio``). SIGTERM (kill, systemd,
    docker stop) would otherwise end the process at once, leaving the temporary folder:
    here it stops the studio as Ctrl-C does, cleaned up, exit status 0."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        with running(host, port, device) as app:
            app.block_thread()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM's handler: leave ``block_thread`` so that ``running`` cleans up."""
    raise SystemExit(0)


@contextmanager
def running(host: str = "127.0.0.1", port: int = 7860, device: str | None = None
            ) -> Iterator[Any]:
    """The studio served in the background while the block runs (tests, notebooks); its
    temporary folder is removed afterwards."""
    if importlib.util.find_spec("gradio") is None:
        raise ArtganError('artgan studio needs gradio: pip install "artgan[studio]"')
    if host not in LOCAL_HOSTS:
        plugins.warn(f"--host {host}: the studio is reachable from other machines, with no "
                     "login; anyone who can reach it can use this computer's models and CPU")
    with ExitStack() as stack:  # undone in reverse: the app closed, settings, the folder
        workspace = Workspace()
        stack.callback(workspace.remove)
        stack.enter_context(_gradio_settings(workspace.uploads))
        app = build(Studio(workspace, device))
        stack.callback(app.close)
        app.queue(default_concurrency_limit=1)  # one job at a time: memory stays bounded
        try:
            app.launch(server_name=host, server_port=port, max_file_size=max_upload_bytes(),
                       prevent_thread_lock=True, show_error=False, quiet=True, footer_links=[],
                       ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
                       inbrowser=False, share=False, theme=_theme())
        except OSError:
            raise ArtganError(f"cannot serve on {host}:{port}: the port is in use or not "
                              "allowed; choose another with --port") from None
        print(f"artgan studio: {app.local_url}", file=sys.stderr, flush=True)
        yield app


@contextmanager
def _gradio_settings(folder: Path) -> Iterator[None]:
    """gradio offline and its cache in ``folder`` while the block runs, and as they were
    afterwards (a notebook may start another studio). gradio reads GRADIO_TEMP_DIR when it
    needs it, except the modules that copied it when gradio was first imported: those are
    pointed at ``folder`` too, or a second studio in one process would write into (and so
    recreate) the first one's removed folder."""
    saved = {name: os.environ.get(name) for name in (*OFFLINE, "GRADIO_TEMP_DIR")}
    try:
        os.environ.update(OFFLINE)  # before gradio's first import
        import gradio  # noqa: F401  (the copies get the folder they would have without us)

        copies = [module for name in TEMP_DIR_COPIES
                  if hasattr(module := sys.modules.get(name), "DEFAULT_TEMP_DIR")]
        kept = [module.DEFAULT_TEMP_DIR for module in copies]
        os.environ["GRADIO_TEMP_DIR"] = str(folder)
        for module in copies:
            module.DEFAULT_TEMP_DIR = str(folder)
        try:
            yield
        finally:
            for module, value in zip(copies, kept, strict=True):
                module.DEFAULT_TEMP_DIR = value
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _theme() -> Any:
    """gradio's default look with fonts the machine has: nothing fetched from a CDN."""
    import gradio as gr

    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                             font_mono=["ui-monospace", "Consolas", "monospace"])


def _tab_order() -> list[str]:
    builtin = {name for record in plugins.plugin_records() if record.builtin
               for name in record.tasks}
    return sorted(plugins.task_names(), key=lambda name: (name not in builtin, name))


def _parameters(task: Task) -> set[str]:
    import inspect

    return set(inspect.signature(task.load).parameters)


__all__ = ["Studio", "build", "running", "serve"]
