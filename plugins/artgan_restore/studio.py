"""restore's tab in ``artgan studio``: see the damage found, brush the mask, restore.

Uploading a picture runs the detector and lays what it found over the picture as a
translucent red layer of the editor. The user paints more (or erases) on that layer with a
brush of any size, then restores: the layer's painted pixels are the mask, used exactly
as ``artgan restore --mask`` uses a mask file, so everything outside it comes back
bit-identical. The picture itself never makes a round trip through the browser's canvas
(which could recompress or colour-manage it): the server keeps the upload it decoded and
takes only the mask from the page. "remove" takes out what the mask covers without
reading it (``--remove``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from artgan.convert import pil_to_uint8, uint8_to_pil
from artgan.errors import ArtganError
from artgan.studio.files import download_stem
from artgan_restore.task import mask_image

OVERLAY = (255, 40, 40, 150)  # the mask layer's colour: translucent red
BRUSH_SIZE = 16
MODES = {"repair damage": False, "remove an object": True}


def restore_tab(studio: Any, task: Any) -> None:
    """The tab's components and events (called by the studio inside the open tab)."""
    import gradio as gr

    from artgan.studio.tabs import model_choice, one_line

    gr.Markdown(task.description + " Upload a picture: the damage found is shown in red. "
                "Paint over anything else to repair, erase what should stay, then restore.")
    picture = gr.State(None)  # the upload as decoded here: (pixels, alpha, download stem)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="picture", file_types=["image"], type="filepath",
                             elem_id="restore-upload")
            model = model_choice(studio, task)
            mode = gr.Radio(list(MODES), value="repair damage", label="mode",
                            info="remove: paint over what the mask covers without reading "
                                 "it (an object, a signature, a label)")
            found = gr.Markdown(elem_id="restore-found")
            clear = gr.Button("Clear the mask")
            button = gr.Button("Restore", variant="primary", elem_id="restore-run")
        with gr.Column(scale=2):
            editor = gr.ImageEditor(
                label="mask: paint to repair, erase to keep", type="numpy", image_mode="RGBA",
                sources=(), transforms=(), layers=False, format="png",
                brush=gr.Brush(colors=[_css(OVERLAY)], default_color=_css(OVERLAY),
                               color_mode="fixed", default_size=BRUSH_SIZE),
                eraser=gr.Eraser(default_size=BRUSH_SIZE), elem_id="restore-editor")
    compare = gr.ImageSlider(label="before | after", type="pil", format="png",
                             elem_id="restore-compare")
    downloads = gr.File(label="restored picture and mask", file_count="multiple",
                        elem_id="restore-download")

    @one_line
    def detect(path: str | None, chosen: str | None, progress=gr.Progress()):
        if not path:
            return None, None, ""
        chosen = studio.checked_model(task, chosen)
        upload = studio.read(path)
        pixels = pil_to_uint8(upload.rgb)
        progress(0.2, desc="finding damage")
        finding = task.restorer(chosen, studio.device).find(pixels)
        share = float(finding.mask.float().mean())
        if not bool(finding.mask.any()):
            said = "No damage found: paint what should be repaired."
        else:
            said = f"Damage found on {share:.2%} of the picture."
            if finding.verdict:
                said += f" Automatic restore would leave it alone ({finding.verdict})."
        value = {"background": np.asarray(upload.rgb), "layers": [_overlay(finding.mask)],
                 "composite": None}
        return value, (pixels, upload.alpha, download_stem(upload.path.stem)), said

    @one_line
    def restore(value: dict | None, kept: tuple | None, chosen: str | None, how: str,
                progress=gr.Progress()):
        if kept is None:
            raise ArtganError("upload a picture first")
        chosen = studio.checked_model(task, chosen)
        if how not in MODES:
            raise ArtganError(f"unknown mode {how!r}")
        pixels, alpha, name = kept
        mask = _painted(value, tuple(pixels.shape[-2:]))
        if not bool(mask.any()):
            raise ArtganError("the mask is empty: paint over what should be repaired")
        restorer = task.restorer(chosen, studio.device, remove=MODES[how])
        progress(0.2, desc="repainting")
        restored = uint8_to_pil(restorer.inpaint(pixels, restorer.prepare_mask(mask, pixels)))
        before = uint8_to_pil(pixels)
        files = [studio.workspace.write(restored, f"{name}.restored.png", alpha=alpha),
                 studio.workspace.write(mask_image(mask), f"{name}.mask.png")]
        return (before, restored), files

    def empty(value: dict | None):
        if not value or value.get("background") is None:
            return value
        height, width = value["background"].shape[:2]
        return {"background": value["background"], "composite": None,
                "layers": [np.zeros((height, width, 4), np.uint8)]}

    inputs = [upload] if model is None else [upload, model]
    upload.change(detect, inputs, [editor, picture, found])
    if model is not None:
        model.change(detect, inputs, [editor, picture, found])
    clear.click(empty, editor, editor)
    chosen = [] if model is None else [model]
    button.click(restore, [editor, picture, *chosen, mode], [compare, downloads])


def _overlay(mask: torch.Tensor) -> np.ndarray:
    """The detected mask as the editor's translucent layer (H, W, 4)."""
    layer = np.zeros((*mask.shape, 4), np.uint8)
    layer[mask.numpy()] = OVERLAY
    return layer


def _painted(value: dict | None, size: tuple[int, int]) -> torch.Tensor:
    """The mask the page sends back: every pixel painted on any layer (its alpha > 0), at
    the picture's size (a layer of another size is a client's error)."""
    layers = (value or {}).get("layers") or []
    mask = np.zeros(size, bool)
    for layer in layers:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.shape[:2] != size:
            raise ArtganError(f"the mask is {layer.shape[1]}x{layer.shape[0]}, the picture "
                              f"{size[1]}x{size[0]}: upload the picture again")
        mask |= layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else layer > 0
    return torch.from_numpy(mask)


def _css(rgba: tuple[int, int, int, int]) -> str:
    return f"rgba({rgba[0]}, {rgba[1]}, {rgba[2]}, {rgba[3] / 255:.2f})"
