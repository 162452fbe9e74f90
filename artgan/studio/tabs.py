"""The two tabs every task gets for free, by the contract its ``load`` returns.

A task that runs over pictures (its ``run_options`` take ``INPUTS``) gets the picture tab:
upload, its options, a before/after slider and the result to download. A task that makes
pictures from seeds (a ``Sampler``, such as generate) gets the sampler tab: seed, count,
its options, a gallery and grid, and a latent-walk animation. The options shown are the
task's declared click options that its ``load`` (or, for a sampler, its sampling call)
takes; a plugin that wants more registers its own tab (``register_studio_tabs``).
"""

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click
import torch

from artgan.convert import image_grid, pil_to_uint8, uint8_to_pil
from artgan.errors import ArtganError
from artgan.imageio import attach_alpha
from artgan.studio.forms import Field, checked, fields
from artgan.task import Task

# generate's CLI options that the sampler tab shows its own way (or not at all: files)
SAMPLER_OWN = ("model", "count", "seed", "out", "grid", "interpolate", "frames", "fps")
MAX_COUNT = 64  # pictures per request, and walk keys/frames: bounds a request's memory
MAX_FRAMES = 240


def one_line(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Run an event handler so that any failure reaches the page as one line (a gradio
    error toast) and the page stays alive; unexpected ones also print a traceback here."""
    import gradio as gr

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except ArtganError as exc:
            raise gr.Error(str(exc).splitlines()[0], print_exception=False) from None
        except Exception as exc:  # a bug: the page still says what happened, in one line
            traceback.print_exc(file=sys.stderr)
            detail = str(exc).strip().splitlines()
            message = type(exc).__name__ + (f": {detail[0]}" if detail else "")
            raise gr.Error(f"internal error: {message}", print_exception=False) from None

    return run


def takes_pictures(task: Task) -> bool:
    """Whether ``task`` runs over picture files (its run options have ``INPUTS``)."""
    return any(isinstance(p, click.Argument) and p.name == "inputs" for p in task.run_options())


def load_keywords(task: Task) -> list[str]:
    """The options ``task.load`` declares, besides the model."""
    return [name for name, p in inspect.signature(task.load).parameters.items()
            if name != "model" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def model_choice(studio: Any, task: Task) -> Any:
    """A dropdown of every installed model of ``task`` (None: the task needs none)."""
    import gradio as gr

    names = studio.model_names(task.name)
    if not names:
        return None
    default = task.default_model if task.default_model in names else names[0]
    return gr.Dropdown(choices=names, value=default, label="model")


def picture_tab(studio: Any, task: Task) -> None:
    """Upload a picture, set the task's options, see before | after, download the result."""
    import gradio as gr

    form = fields(task.run_options(), load_keywords(task))
    gr.Markdown(task.description)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="picture", file_types=["image"], type="filepath",
                             elem_id=f"{task.name}-upload")
            model = model_choice(studio, task)
            widgets = [field.widget() for field in form]
            button = gr.Button("Run", variant="primary", elem_id=f"{task.name}-run")
        with gr.Column(scale=2):
            compare = gr.ImageSlider(label="before | after", type="pil", format="png",
                                     elem_id=f"{task.name}-compare")
            download = gr.File(label="result", elem_id=f"{task.name}-download")

    @one_line
    def show(path: str | None):
        if not path:
            return None
        picture = studio.read(path)
        return (picture.rgb, picture.rgb)

    @one_line
    def run(path: str | None, *values: Any, progress=gr.Progress()):
        chosen, options = _split(model, values)
        picture = studio.read(path)
        progress(0.1, desc="loading the model")
        pipeline = studio.pipeline(task, chosen, checked(form, options))
        progress(0.3, desc=f"running {task.name}")
        result = pipeline(picture.rgb)
        saved = attach_alpha(result, picture.alpha) if picture.alpha is not None and \
            picture.alpha.size == result.size else result
        return (picture.rgb, result), studio.workspace.write(saved, f"{task.name}.png")

    upload.change(show, upload, compare)
    button.click(run, [upload, *_present(model), *widgets], [compare, download])


def sampler_tab(studio: Any, task: Task) -> None:
    """Pictures from a seed (a gallery, a grid to download) and a looping latent walk."""
    import gradio as gr

    keywords = load_keywords(task)
    options = task.run_options()
    form = fields(options, keywords)
    sampling = [f for f in fields(options, [o.name for o in options if o.name])
                if f.name not in keywords and f.name not in SAMPLER_OWN]
    gr.Markdown(task.description)
    with gr.Row():
        with gr.Column(scale=1):
            model = model_choice(studio, task)
            seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
            count = gr.Slider(1, MAX_COUNT, value=8, step=1, label="count")
            widgets = [f.widget() for f in (*form, *sampling)]
            paint = gr.Button("Paint", variant="primary", elem_id=f"{task.name}-paint")
            keys = gr.Slider(2, 8, value=3, step=1, label="walk through seeds")
            frames = gr.Slider(8, MAX_FRAMES, value=48, step=1, label="frames")
            fps = gr.Slider(1, 30, value=12, step=1, label="frames per second")
            walk = gr.Button("Walk", elem_id=f"{task.name}-walk")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="pictures", format="png", columns=4)
            grid = gr.File(label="grid", elem_id=f"{task.name}-grid")
            animation = gr.Image(label="latent walk", type="filepath", interactive=False)
            saved = gr.File(label="animation", elem_id=f"{task.name}-animation")

    def prepare(values: tuple[Any, ...], progress: Any):
        chosen, rest = _split(model, values)
        loaded = checked(form, rest[:len(form)])
        extra = checked(sampling, rest[len(form):])
        progress(0.1, desc="loading the model")
        return studio.pipeline(task, chosen, loaded), extra

    @one_line
    def sample(first: float, n: float, *values: Any, progress=gr.Progress()):
        sampler, extra = prepare(values, progress)
        progress(0.3, desc="painting")
        pictures = sampler(_whole(n, "count", 1, MAX_COUNT), _whole(first, "seed", 0), **extra)
        sheet = uint8_to_pil(image_grid(torch.stack([pil_to_uint8(p) for p in pictures])))
        return pictures, studio.workspace.write(sheet, "grid.png")

    @one_line
    def interpolate(first: float, k: float, n: float, rate: float, *values: Any,
                    progress=gr.Progress()):
        from artgan.imageio import write_animation

        sampler, extra = prepare(values, progress)
        start, k = _whole(first, "seed", 0), _whole(k, "walk through seeds", 2, 8)
        progress(0.3, desc="walking")
        pictures = sampler.interpolate(range(start, start + k),
                                       _whole(n, "frames", 2, MAX_FRAMES), **extra)
        path = studio.workspace.result_path("walk.gif")
        write_animation(pictures, path, float(rate))
        return str(path), str(path)

    inputs = [*_present(model), *widgets]
    paint.click(sample, [seed, count, *inputs], [gallery, grid])
    walk.click(interpolate, [seed, keys, frames, fps, *inputs], [animation, saved])


def _present(model: Any) -> list[Any]:
    return [] if model is None else [model]


def _split(model: Any, values: tuple[Any, ...]) -> tuple[str | None, tuple[Any, ...]]:
    """(chosen model, the option values) from a handler's inputs."""
    return (None, values) if model is None else (values[0], values[1:])


def _whole(value: Any, what: str, low: int, high: int | None = None) -> int:
    """A number from the page as a whole number in [low, high], or one line saying why not."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ArtganError(f"{what}: give a whole number") from None
    if not number.is_integer() or number < low or (high is not None and number > high):
        limit = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ArtganError(f"{what}: give a whole number {limit}, not {value}")
    return int(number)


__all__ = ["Field", "one_line", "picture_tab", "sampler_tab", "takes_pictures"]
