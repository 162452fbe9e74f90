"""Training checkpoints: the whole run state in one safetensors file, written crash-safely.

A checkpoint is a tree (dicts, lists, tuples, numbers, strings, tensors): network and
optimizer state dicts, EMA, augmentation state, RNG states, the fixed sample inputs.
Tensors go into the safetensors tensor table and the rest of the tree into its JSON
metadata, so no pickle is involved. ``latest.safetensors`` is replaced atomically and
the one before it is kept as ``previous.safetensors``: a process killed at any moment
leaves at least one of them complete.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from artgan.atomic import atomic_path
from artgan.errors import ArtganError

FORMAT = "artgan.checkpoint/1"
LATEST = "latest.safetensors"
PREVIOUS = "previous.safetensors"
_TMP_SUFFIX = ".tmp"


def save(directory: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` as the new latest checkpoint; the old latest becomes previous."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = _pack(state, "", tensors)
    metadata = {"format": FORMAT, "state": json.dumps(tree)}
    _remove_stale(directory)
    latest = directory / LATEST
    with atomic_path(latest) as temporary:
        save_file(tensors, temporary, metadata=metadata)
        if latest.exists():
            os.replace(latest, directory / PREVIOUS)
    return latest


def exists(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a checkpoint (complete or not)."""
    directory = Path(directory)
    return (directory / LATEST).exists() or (directory / PREVIOUS).exists()


def load(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The newest readable checkpoint in ``directory``, or None if there is none.

    Falls back to ``previous`` when ``latest`` is missing or damaged; raises ArtganError
    when checkpoints exist but none can be read.
    """
    directory = Path(directory)
    problems = []
    for name in (LATEST, PREVIOUS):
        path = directory / name
        if not path.exists():
            continue
        try:
            return read(path)
        except ArtganError as exc:
            problems.append(str(exc))
            print(f"warning: {exc}; trying an older checkpoint", file=sys.stderr)
    if problems:
        raise ArtganError(f"no readable checkpoint in {directory}: {problems[-1]}")
    return None


def read(path: str | os.PathLike) -> dict[str, Any]:
    """Load one checkpoint file into its tree (tensors on the CPU)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ArtganError(f"{path}: not an artgan training checkpoint")
        tensors = load_file(str(path))
        return _unpack(json.loads(metadata["state"]), tensors)
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError) as exc:
        raise ArtganError(f"{path}: unreadable checkpoint ({exc})") from None


def rng_state() -> dict[str, Any]:
    """Every random generator a training step may draw from."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": _numpy_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` captured (CUDA states only where the GPUs match)."""
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _numpy_state() -> tuple:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def _pack(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in ``value`` by references into ``tensors``; make the rest JSON-able."""
    if isinstance(value, torch.Tensor):
        key = path or "tensor"
        if key in tensors:
            key = f"{key}#{len(tensors)}"
        # A private copy: safetensors refuses tensors sharing memory, e.g. tied weights.
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _pack(v, f"{path}/{k}" if path else k, tensors) for k, v in value.items()}
        return {"__dict__": [[_pack(k, path, tensors), _pack(v, f"{path}/{k}", tensors)]
                             for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_pack(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_pack(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {path!r} in a checkpoint")


def _unpack(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_unpack(v, tensors) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_unpack(k, tensors): _unpack(v, tensors) for k, v in value["__dict__"]}
        return {k: _unpack(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, tensors) for v in value]
    return value


def _remove_stale(directory: Path) -> None:
    """Delete temporary files a killed process left behind.

    Only the writer (``save``) does this: a reader must not delete a save in flight.
    """
    if directory.is_dir():
        for leftover in directory.glob(f".*{_TMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)
