"""Export a model's networks to ONNX or OpenVINO, to run them without torch.

Why: a painting model is a few MB, torch is a few hundred; an exported network runs in
onnxruntime or OpenVINO inside an image editor's plugin, a web server or a phone
app that cannot carry torch. Each network of a model becomes one self-contained fp32 file
(``<model>.<network>.onnx``: a style model's ``a2b`` and ``b2a``, a restore model's
``detector`` and ``inpainter``, a generate model's ``generator``), made by torch's dynamo
exporter at opset 18 (the inpainter's Fourier transforms as matrix products:
``artgan_restore.spectral``); or, with ``format="openvino"``, one
OpenVINO IR pair (``<model>.<network>.xml`` and ``.bin``) converted by
``openvino.convert_model`` from the same prepared networks. Batch size is dynamic; so are height and
width where the network is fully convolutional (style generators, the detector). The
generator has its fixed output size, and the inpainter is exported at one size (its
fill's pyramid has a depth that depends on the size, which ONNX shapes cannot follow):
the restorer runs it on windows of the model's working size anyway.

What a runtime needs to feed a network is in the file's metadata (ONNX
``metadata_props``, OpenVINO ``rt_info``), under ``artgan.*`` keys: the value range of
inputs and outputs (``[0, 1]`` pictures, N x 3 x H x W RGB; the detector returns logits),
the size multiple and minimum (or fixed size), the network and its direction, the task,
model name and artgan version.
``examples/onnx_stylize.py`` reads them to run a style model with onnxruntime alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artgan import __version__, store
from artgan.errors import ArtganError

if TYPE_CHECKING:  # imported by each function that builds or exports: the CLI loads this module
    from torch import Tensor, nn

FORMATS = ("onnx", "openvino")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml"}
OPSET = 18
FORMAT = "artgan.onnx/1"
OPENVINO_FORMAT = "artgan.openvino/1"
MISSING_EXTRA = 'export needs the onnx extra: pip install "artgan[onnx]"'
EXAMPLE_BATCH = 2  # a batch of 1 would make the exporter fix the batch size at 1


@dataclass
class ExportNetwork:
    """One network ready for the exporter: a module whose ``forward`` takes ``inputs`` (by
    argument name) and returns one tensor named ``output``."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    output: str
    dynamic: dict[str, dict[int, Any]]
    metadata: dict[str, Any] = field(default_factory=dict)


def _check_size(size: int, multiple: int, least: int, what: str) -> None:
    if size < least or size % multiple:
        raise ArtganError(f"--size {size}: the {what} needs a multiple of {multiple}, at "
                          f"least {least}")


def _style_networks(loaded: store.LoadedModel, size: int | None) -> list[ExportNetwork]:
    import torch

    from artgan.nn.blocks import UnitRange

    directions = {"a2b": "photo -> painting", "b2a": "painting -> photo"}
    out = []
    for name, generator in loaded.network.items():
        multiple = generator.multiple
        size = size or 16 * multiple
        _check_size(size, multiple, 4 * multiple, "style generator")
        image = torch.rand(EXAMPLE_BATCH, 3, size, size)
        spatial = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC,
                   3: torch.export.Dim.DYNAMIC}
        out.append(ExportNetwork(
            name, UnitRange(generator), {"image": image}, "output", {"image": spatial},
            {"direction": directions.get(name, name), "inputs": "image",
             "input_range": [0, 1], "output_range": [0, 1], "size_multiple": multiple,
             "min_size": 4 * multiple, "pad": "reflect to the multiple, bottom and right",
             "dynamic": "batch,height,width"},
        ))
    return out


def _generate_networks(loaded: store.LoadedModel, size: int | None) -> list[ExportNetwork]:
    import torch

    from artgan.nn.blocks import UnitRangeFromLatents

    generator = loaded.network
    z = torch.randn(EXAMPLE_BATCH, generator.latent_dim)
    return [ExportNetwork(
        "generator", UnitRangeFromLatents(generator), {"z": z}, "output",
        {"z": {0: torch.export.Dim.DYNAMIC}},
        {"direction": "latent -> picture", "inputs": "z", "input_range": "standard normal",
         "latent_dim": generator.latent_dim, "output_range": [0, 1],
         "fixed_size": generator.size, "dynamic": "batch"},
    )]


def _restore_networks(loaded: store.LoadedModel, size: int | None) -> list[ExportNetwork]:
    import torch

    detector, inpainter = loaded.network["detector"], loaded.network["inpainter"]
    size = size or loaded.config.get("size", 256)  # the restorer's window size
    _check_size(size, inpainter.multiple, 4 * inpainter.multiple, "inpainter")
    dynamic = torch.export.Dim.DYNAMIC
    channels = "damage,hides" if detector.outputs == 2 else "damage"
    picture = torch.rand(EXAMPLE_BATCH, 3, 2 * detector.multiple, 2 * detector.multiple)
    image = torch.rand(EXAMPLE_BATCH, 3, size, size)
    mask = (torch.rand(EXAMPLE_BATCH, 1, size, size) > 0.8).float()
    return [
        ExportNetwork(
            "detector", detector, {"image": picture}, "logits",
            {"image": {0: dynamic, 2: dynamic, 3: dynamic}},
            {"direction": "picture -> damage logits", "inputs": "image",
             "input_range": [0, 1], "output_range": "logits",
             "output_channels": channels, "size_multiple": detector.multiple,
             "min_size": detector.multiple, "dynamic": "batch,height,width"},
        ),
        ExportNetwork(
            "inpainter", inpainter, {"image": image, "mask": mask}, "output",
            {"image": {0: dynamic}, "mask": {0: dynamic}},
            {"direction": "picture and mask (1 = repaint) -> repainted picture",
             "inputs": "image,mask", "input_range": [0, 1], "output_range": [0, 1],
             "fixed_size": size, "size_multiple": inpainter.multiple, "dynamic": "batch",
             "composite": "keep the known pixels: mask * output + (1 - mask) * image"},
        ),
    ]


BUILDERS: dict[str, Callable[[store.LoadedModel, int | None], list[ExportNetwork]]] = {
    "cyclegan": _style_networks,
    "cut": _style_networks,
    "fastgan": _generate_networks,
    "restore": _restore_networks,
}


def export_networks(task: str, model: str, size: int | None = None
                    ) -> tuple[store.LoadedModel, list[ExportNetwork]]:
    """The loaded model and its networks, prepared for export: ``size`` is the side of a
    style generator's example pictures (any size works with the file; default 64) and the
    inpainter's fixed size (default: the model's working size)."""
    loaded = store.load_model(model, task)
    architecture = loaded.info.metadata["architecture"]
    builder = BUILDERS.get(architecture)
    if builder is None:
        raise ArtganError(f"cannot export {architecture!r} models: export knows "
                          f"{', '.join(sorted(BUILDERS))}")
    return loaded, builder(loaded, size)


def _reason(exc: BaseException) -> str:
    """The failing operator (or traced line) named in an exporter's error chain."""
    texts = []
    while exc is not None:
        texts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    text = "\n".join(texts)
    unsupported = re.search(r"Unsupported FX nodes?:.*?'((?:aten|prims)\.[\w.]+)'", text,
                            re.S)
    if unsupported:
        return f"operator {unsupported.group(1)} has no ONNX translation"
    for pattern in (r"No (?:decompositions|ONNX function)[^\n]*?((?:aten|prims)[.:]+[\w.]+)",
                    r"((?:aten|prims)::\w+)"):
        found = re.search(pattern, text)
        if found:
            return f"operator {found.group(1)} cannot be exported"
    call = re.search(r"The following call raised this error:\s*File \"([^\"]+)\", line (\d+)"
                     r"[^\n]*\n\s*(.+)", text)
    if call:
        where = f"{Path(call.group(1)).name}:{call.group(2)}"
        kind = ("data-dependent control flow" if "data-dependent" in text
                else "an untraceable call")
        return f"{kind} at {where} ({call.group(3).strip()})"
    first = texts[-1].splitlines()[0] if texts else "unknown error"
    return first[:300]


def require_onnx() -> None:
    """One clear error when the ``onnx`` extra is not installed."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise ArtganError(MISSING_EXTRA) from None


def to_onnx(network: ExportNetwork, path: Path, base: dict[str, Any]) -> Path:
    """Export one network to ``path`` with its metadata; one ArtganError if it cannot be."""
    import torch

    require_onnx()
    module = network.module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    names = list(network.inputs)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                module, tuple(network.inputs.values()), dynamo=True, opset_version=OPSET,
                input_names=names, output_names=[network.output],
                dynamic_shapes=network.dynamic, verbose=False, optimize=True,
            )
    except Exception as exc:  # the exporter raises many kinds; each is one user error
        raise ArtganError(f"cannot export the {base['model']} {network.name} network to "
                          f"ONNX: {_reason(exc)}") from exc
    proto = program.model_proto
    metadata = {**base, "network": network.name, "output": network.output,
                **network.metadata}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = f"artgan.{key}"
        entry.value = value if isinstance(value, str) else json.dumps(value)
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(proto, str(path))
    return path


def _shapes(network: ExportNetwork) -> list[list[int]]:
    """Each input's shape with -1 where the export leaves it dynamic."""
    dynamic = network.dynamic or {}
    return [[-1 if axis in dynamic.get(name, {}) else size
             for axis, size in enumerate(example.shape)]
            for name, example in network.inputs.items()]


def to_openvino(network: ExportNetwork, path: Path, base: dict[str, Any]) -> Path:
    """Convert one network to OpenVINO IR at ``path`` (.xml, its weights in the .bin beside
    it) with its metadata in ``rt_info``; one ArtganError if it cannot be converted."""
    from artgan import backends

    module = network.module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    try:
        converted = backends.convert(module, list(network.inputs.values()), _shapes(network))
    except Exception as exc:  # the converter raises many kinds; each is one user error
        raise ArtganError(f"cannot export the {base['model']} {network.name} network to "
                          f"OpenVINO: {_reason(exc)}") from exc
    for port, name in zip(converted.inputs, network.inputs, strict=True):
        port.get_tensor().set_names({name})
    converted.outputs[0].get_tensor().set_names({network.output})
    metadata = {**base, "format": OPENVINO_FORMAT, "network": network.name,
                "output": network.output, **network.metadata}
    for key, value in metadata.items():
        converted.set_rt_info(value if isinstance(value, str) else json.dumps(value),
                              ["artgan", key])
    return backends.save(converted, path)


def export(task: str, model: str, out: str | Path = ".", format: str = "onnx",
           size: int | None = None) -> list[Path]:
    """Write each network of ``model`` (a ``task`` model name or file) to the folder ``out``
    as ``<model>.<network>.onnx`` (or ``.xml`` and ``.bin`` for OpenVINO); returns the
    paths written."""
    if format not in FORMATS:
        raise ArtganError(f"--format {format}: choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        require_onnx()
    else:
        from artgan import backends

        backends.openvino()
    loaded, networks = export_networks(task, model, size)
    stem = loaded.info.name
    base = {"format": FORMAT, "task": task, "model": stem,
            "architecture": loaded.info.metadata["architecture"],
            "artgan_version": __version__, "layout": "NCHW float32, RGB"}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ArtganError(f"--out {out}: must be a folder (one file per network goes there)")
    write = to_onnx if format == "onnx" else to_openvino
    return [write(network, out / f"{stem}.{network.name}{SUFFIXES[format]}", base)
            for network in networks]


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``artgan.*`` metadata of an exported file (``.onnx`` or OpenVINO ``.xml``), JSON
    values decoded."""
    path = Path(path)
    if path.suffix == ".xml":
        from artgan import backends

        model = backends.openvino().Core().read_model(str(path))
        info = model.get_rt_info()
        entries = {key: value.astype(str) for key, value in info["artgan"].items()} \
            if "artgan" in info else {}
    else:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        entries = {entry.key[7:]: entry.value for entry in proto.metadata_props
                   if entry.key.startswith("artgan.")}
    out: dict[str, Any] = {}
    for key, value in entries.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
