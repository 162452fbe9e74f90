"""The model store: named models saved as safetensors with their metadata and model card.

A model file holds the weights of one network (``nn.Module``; several networks are kept
in one ``ModuleDict``) and, in the safetensors header, everything needed to rebuild and
trust it: the task, the architecture name and config, the artgan version and a model card.
Names resolve in this order: an explicit ``.safetensors`` path, the user model folder
(``$ARTGAN_HOME/models/<task>/``), models registered by plugins, then the shipped ``models/``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from artgan import __version__
from artgan.atomic import atomic_path
from artgan.errors import ArtganError, UnknownNameError
from artgan.nn import ARCHITECTURES

FORMAT = "artgan.model/1"
SUFFIX = ".safetensors"


@dataclass
class ModelInfo:
    """Where a named model lives and what its header says, without loading the weights."""

    name: str
    task: str
    path: Path
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def card(self) -> dict[str, Any]:
        return self.metadata.get("card", {})

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def summary(self) -> str:
        """One line from the card: data, steps and the headline metric."""
        card = self.card
        parts = [card.get("summary") or card.get("data", "")]
        if "steps" in card:
            parts.append(f"{card['steps']} steps")
        return "; ".join(p for p in parts if p)


@dataclass
class LoadedModel:
    """A rebuilt network with its weights and header."""

    network: torch.nn.Module
    info: ModelInfo

    @property
    def config(self) -> dict[str, Any]:
        return self.info.metadata["config"]


def user_model_dir() -> Path:
    """``$ARTGAN_HOME/models``; ARTGAN_HOME defaults to the user cache folder."""
    home = os.environ.get("ARTGAN_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "artgan")
    return Path(home) / "models"


def shipped_model_dir() -> Path:
    """The repository's ``models/`` folder, installed as the ``artgan_models`` package.

    Falls back to ``models/`` beside the ``artgan`` package when running from a source tree.
    """
    try:
        return Path(str(resources.files("artgan_models")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "models"


def save_model(
    network: torch.nn.Module,
    path: str | os.PathLike,
    *,
    task: str,
    architecture: str,
    config: dict[str, Any],
    card: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``network``'s weights and metadata atomically; ``half`` stores floats as fp16."""
    ARCHITECTURES.get(architecture)
    tensors = {}
    for key, value in network.state_dict().items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value.contiguous()
    metadata = {
        "format": FORMAT,
        "task": task,
        "architecture": architecture,
        "config": json.dumps(config, sort_keys=True),
        "artgan_version": __version__,
        "card": json.dumps(card or {}, sort_keys=True),
    }
    return _atomic_save(tensors, Path(path), metadata)


def update_card(path: str | os.PathLike, changes: dict[str, Any]) -> Path:
    """Merge ``changes`` into a model file's card, keeping its tensors exactly as stored.

    For facts measured after training (benchmark results, corrected data descriptions).
    """
    path = Path(path)
    metadata = read_header(path)
    card = {**metadata.get("card", {}), **changes}
    raw = {
        key: json.dumps(value, sort_keys=True) if key in ("config", "card") else value
        for key, value in {**metadata, "card": card}.items()
    }
    return _atomic_save(load_file(str(path), device="cpu"), path, raw)


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a model file's metadata without reading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise ArtganError(f"{path}: no such model file")
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ArtganError(f"{path}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", head)
        if length > 100_000_000 or length > path.stat().st_size - 8:
            raise ArtganError(f"{path}: not a safetensors file (bad header length)")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ArtganError(f"{path}: not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise ArtganError(f"{path}: not a safetensors file (unreadable header)")
    raw = header.get("__metadata__") or {}
    if raw.get("format") != FORMAT:
        raise ArtganError(f"{path}: a safetensors file, but not an artgan model (no metadata)")
    metadata: dict[str, Any] = dict(raw)
    for key in ("config", "card"):
        try:
            metadata[key] = json.loads(raw.get(key, "{}"))
        except json.JSONDecodeError:
            raise ArtganError(f"{path}: corrupt {key} in the model metadata") from None
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if path.stat().st_size < 8 + length + end:
        raise ArtganError(f"{path}: truncated model file ({path.stat().st_size} bytes)")
    return metadata


def load_model(
    model: str | os.PathLike | None, task: str, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Resolve ``model`` for ``task``, rebuild its architecture and load the weights."""
    info = find_model(model, task)
    metadata = info.metadata
    if metadata["task"] != task:
        raise ArtganError(
            f"{info.path}: this is a {metadata['task']!r} model, not a {task!r} model"
        )
    factory = ARCHITECTURES.get(metadata["architecture"])
    try:
        network = factory(**metadata["config"])
    except TypeError as exc:
        raise ArtganError(
            f"{info.path}: config does not fit {metadata['architecture']!r}: {exc}"
        ) from None
    try:
        tensors = load_file(str(info.path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ArtganError(f"{info.path}: corrupt model file ({exc})") from None
    expected = network.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ArtganError(
            f"{info.path}: weights do not match {metadata['architecture']!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, "
            f"e.g. {(missing + unexpected)[0]})"
        )
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise ArtganError(
                f"{info.path}: tensor {key} has shape {tuple(value.shape)}, "
                f"{metadata['architecture']!r} expects {tuple(expected[key].shape)}"
            )
        tensors[key] = value.to(expected[key].dtype)
    network.load_state_dict(tensors)
    network.eval().to(device)
    return LoadedModel(network, info)


def find_model(model: str | os.PathLike | None, task: str) -> ModelInfo:
    """Resolve a name or path to a ``ModelInfo``; ``None`` means the task's default."""
    from artgan import plugins

    if model is None:
        model = plugins.get_task(task).default_model
        if model is None:
            raise ArtganError(f"task {task!r} needs a model: give a name or a .safetensors path")
    text = os.fspath(model)
    if text.endswith(SUFFIX) or os.sep in text or Path(text).is_file():
        path = Path(text)
        return ModelInfo(path.stem, task, path, "path", read_header(path))
    available = list_models(task)
    for info in available:
        if info.name == text:
            return info
    raise UnknownNameError(f"{task} model", text, {i.name for i in available})


def list_models(task: str | None = None) -> list[ModelInfo]:
    """Every findable model (first source wins per name), optionally of one task."""
    from artgan import plugins

    found: dict[tuple[str, str], ModelInfo] = {}
    sources = [("user", _scan(user_model_dir()))]
    sources.append(("plugin", plugins.registered_models()))
    sources.append(("shipped", _scan(shipped_model_dir())))
    for source, entries in sources:
        for name, entry_task, path in entries:
            if (task is None or entry_task == task) and (entry_task, name) not in found:
                try:
                    metadata = read_header(path)
                except ArtganError as exc:
                    plugins.warn(f"ignoring model: {exc}")
                    continue
                found[(entry_task, name)] = ModelInfo(name, entry_task, Path(path), source,
                                                      metadata)
    return sorted(found.values(), key=lambda i: (i.task, i.name))


def _scan(root: Path) -> list[tuple[str, str, Path]]:
    """``<root>/<task>/<name>.safetensors`` entries."""
    if not root.is_dir():
        return []
    return [(p.stem, p.parent.name, p) for p in sorted(root.glob(f"*/*{SUFFIX}"))]
