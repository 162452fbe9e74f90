"""The model store: named models saved as safetensors with their metadata and model card.

A model file holds the weights of one network (``nn.Module``; several networks are kept
in one ``ModuleDict``) and, in the safetensors header, everything needed to rebuild and
trust it: the task, the architecture name and config, the artgan version and a model card.
Names resolve in this order: an explicit ``.safetensors`` path, the user model folder
(``$ARTGAN_HOME/models/<task>/``), then models registered by plugins through
``register_models``: the built-in plugins register the weights artgan ships in ``models/``
(``register_shipped``) that way, and being registered first they keep their names.
"""

from __future__ import annotations

import json
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from artgan import __version__
from artgan.atomic import atomic_path
from artgan.errors import ArtganError, UnknownNameError
from artgan.nn import ARCHITECTURES

if TYPE_CHECKING:  # torch is imported where weights are read or written, not with artgan
    import torch

FORMAT = "artgan.model/1"
SUFFIX = ".safetensors"
MAX_HEADER = 100_000_000  # bytes; safetensors' own limit
CONFIG_INT_LIMIT = 4096
"""The largest integer a config may hold: above any real width, size or block count, far
below what would exhaust memory or time while the network is built."""
CONFIG_DEPTH = 4  # nesting levels a config may have (restore's holds one per network)
STALE_TEMPORARY_SECONDS = 15 * 60
"""Age at which a model file's temporary is a killed save's leftover: minutes longer than
any save takes to write a small GAN's weights."""
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: ESC, OSC, BEL, newlines...


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
        """One line from the card: what it is, and the training step its weights are from
        (a validation-picked step, when one was, of the steps trained)."""
        card = self.card
        parts = [str(card.get("summary") or card.get("data") or "")]
        exported = card.get("exported_step", card.get("selected_step"))
        if exported is not None and "steps" in card:
            parts.append(f"weights of step {exported} of {card['steps']}")
        elif "steps" in card:
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


def register_shipped(register: Callable[[str, str, Path], None], task: str) -> None:
    """What a built-in plugin's ``register_models`` does: register each model artgan ships
    for ``task`` (``models/<task>/*.safetensors``) under its file name."""
    for path in sorted((shipped_model_dir() / task).glob(f"*{SUFFIX}")):
        register(path.stem, task, path)


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
    from safetensors.torch import load_file

    return _atomic_save(load_file(str(path), device="cpu"), path, raw)


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    from safetensors.torch import save_file

    _remove_stale_temporaries(path)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)
    return path


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the ``.NAME.*.tmp`` files that killed saves of ``path`` left behind.

    ``atomic_path`` names temporaries at random, not by writer, so age tells a dead
    writer's from a live one's: a live save writes its temporary until it renames it.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[^.]+\.tmp")
    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    try:
        leftovers = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:  # no folder yet: atomic_path makes it
        return
    for leftover in leftovers:
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:  # removed by another writer meanwhile, or not ours to remove
            pass


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check a model file's metadata without reading its tensors.

    Model files come from anywhere: every way a header can be malformed is an ``ArtganError``
    that starts with the path, so a bad file costs one line, never a traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtganError(f"{path}: no such model file")
    length, header = _read_json_header(path)
    raw = header.get("__metadata__") or {}
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArtganError(f"{path}: a safetensors file, but not an artgan model (no metadata)")
    metadata = _parse_metadata(path, raw)
    size = path.stat().st_size
    if size < 8 + length + _data_end(path, header):
        raise ArtganError(f"{path}: truncated model file ({size} bytes)")
    return metadata


def _read_json_header(path: Path) -> tuple[int, dict[str, Any]]:
    """The header's length and its JSON object."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ArtganError(f"{path}: not a safetensors file (too short)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER or length > path.stat().st_size - 8:
                raise ArtganError(f"{path}: not a safetensors file (bad header length)")
            text = handle.read(length)
    except OSError as exc:
        raise ArtganError(f"{path}: cannot read the model file ({exc.strerror or exc})") from None
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, huge numbers, deep nesting
        header = None
    if not isinstance(header, dict):
        raise ArtganError(f"{path}: not a safetensors file (unreadable header)")
    return length, header


def _parse_metadata(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with config and card decoded, holding everything loading and listing read."""
    for key in ("task", "architecture"):
        if not isinstance(raw.get(key), str):
            raise ArtganError(f"{path}: corrupt model metadata (no {key})")
    metadata = dict(raw)
    for key in ("config", "card"):
        metadata[key] = _json_object(path, key, raw.get(key, "{}"))
    _check_config(path, metadata["config"])
    return metadata


def _json_object(path: Path, key: str, text: Any) -> dict[str, Any]:
    """The JSON object that metadata ``key`` holds as a string."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise ArtganError(f"{path}: corrupt {key} in the model metadata")
    return value


def _check_config(path: Path, value: Any, key: str = "config", depth: int = 0) -> None:
    """Refuse integers no real network has before anything is built: a header asking for
    ``width=100000`` must not make artgan try to allocate hundreds of GB."""
    if isinstance(value, dict | list):
        if depth == CONFIG_DEPTH:
            raise ArtganError(f"{path}: {printable(key)} in the model metadata nests too deeply")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for name, item in items:
            _check_config(path, item, f"{key}.{name}", depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= CONFIG_INT_LIMIT:
            raise ArtganError(f"{path}: {printable(key)}={value} is out of bounds "
                              f"(0..{CONFIG_INT_LIMIT})")


def _data_end(path: Path, header: dict[str, Any]) -> int:
    """Where the last tensor's bytes end, each tensor entry having usable offsets."""
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(type(o) is int and o >= 0 for o in offsets)):
            raise ArtganError(f"{path}: corrupt model file (tensor {name!r} has no data_offsets)")
        end = max(end, offsets[1])
    return end


def load_model(
    model: str | os.PathLike | None, task: str, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Resolve ``model`` for ``task``, rebuild its architecture and load the weights.

    The network is built on the meta device (no memory) first and checked against the
    file's tensors, so a header cannot make artgan allocate more than the file holds.
    """
    import torch
    from safetensors.torch import load_file

    info = find_task_model(model, task)
    metadata = info.metadata
    factory = ARCHITECTURES.get(metadata["architecture"])
    try:
        tensors = load_file(str(info.path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise ArtganError(f"{info.path}: corrupt model file ({exc})") from None
    with torch.device("meta"):
        expected = _build(info, factory).state_dict()
    _check_names(info, set(tensors), set(expected))
    for key, value in tensors.items():
        tensors[key] = _checked_tensor(info, key, value, expected[key])
    network = _build(info, factory)
    network.load_state_dict(tensors)
    network.eval().to(device)
    return LoadedModel(network, info)


def _build(info: ModelInfo, factory: Callable[..., torch.nn.Module]) -> torch.nn.Module:
    """The network the header's config describes, on the current default device."""
    try:
        return factory(**info.metadata["config"])
    except (TypeError, ValueError, RuntimeError) as exc:  # RuntimeError: e.g. negative sizes
        reason = str(exc).split("\n")[0]
        raise ArtganError(
            f"{info.path}: config does not fit {info.metadata['architecture']!r}: {reason}"
        ) from None


def _check_names(info: ModelInfo, found: set[str], expected: set[str]) -> None:
    """Refuse weights made for another network (e.g. another task's, relabelled)."""
    missing = sorted(expected - found)
    unexpected = sorted(found - expected)
    if missing or unexpected:
        raise ArtganError(
            f"{info.path}: weights do not match {info.metadata['architecture']!r} "
            f"({len(missing)} missing, {len(unexpected)} unexpected, "
            f"e.g. {(missing + unexpected)[0]!r})"
        )


def _checked_tensor(info: ModelInfo, key: str, value: torch.Tensor,
                    expected: torch.Tensor) -> torch.Tensor:
    """``value`` in the dtype the network expects, once its shape and values can be trusted:
    NaN, infinite or integer weights would run and give flat pictures without a word."""
    architecture = info.metadata["architecture"]
    if value.shape != expected.shape:
        raise ArtganError(
            f"{info.path}: tensor {key!r} has shape {tuple(value.shape)}, "
            f"{architecture!r} expects {tuple(expected.shape)}"
        )
    if value.is_floating_point() != expected.is_floating_point():
        raise ArtganError(f"{info.path}: tensor {key!r} is {value.dtype}, "
                          f"{architecture!r} expects {expected.dtype}")
    value = value.to(expected.dtype)
    if value.is_floating_point() and not value.isfinite().all():
        raise ArtganError(f"{info.path}: tensor {key!r} holds NaN or infinite values")
    return value


def find_task_model(model: str | os.PathLike | None, task: str) -> ModelInfo:
    """``find_model``, refusing a file made for another task (read from its header alone:
    no weights, no torch)."""
    info = find_model(model, task)
    if info.metadata["task"] != task:
        raise ArtganError(
            f"{info.path}: this is a {info.metadata['task']!r} model, not a {task!r} model"
        )
    return info


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
    entries = [(name, entry_task, path, "user") for name, entry_task, path in
               _scan(user_model_dir())]
    entries += [(m.name, m.task, m.path, "shipped" if m.builtin else "plugin")
                for m in plugins.registered_models()]
    for name, entry_task, path, source in entries:
        if (task is None or entry_task == task) and (entry_task, name) not in found:
            try:
                metadata = read_header(path)
            except ArtganError as exc:
                plugins.warn(f"ignoring model: {printable(str(exc))}")
                continue
            found[(entry_task, name)] = ModelInfo(name, entry_task, Path(path), source, metadata)
    return sorted(found.values(), key=lambda i: (i.task, i.name))


def _scan(root: Path) -> list[tuple[str, str, Path]]:
    """``<root>/<task>/<name>.safetensors`` entries."""
    if not root.is_dir():
        return []
    return [(p.stem, p.parent.name, p) for p in sorted(root.glob(f"*/*{SUFFIX}"))]


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control characters, whose escape sequences
    could retitle or reprogram it, are shown as ``\\xNN`` instead."""
    return CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
