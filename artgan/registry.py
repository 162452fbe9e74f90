"""A small name -> object registry, the one mechanism behind every named thing.

Tasks, architectures, losses and augmentations are all looked up by name through a
``Registry`` so that plugins can add to them and unknown names get a "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from artgan.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; ``kind`` names what is stored, for error messages."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None, *, replace: bool = False):
        """Add ``item`` under ``name``; without ``item``, return a decorator."""
        if item is None:
            def decorator(obj: T) -> T:
                self.register(name, obj, replace=replace)
                return obj
            return decorator
        if name in self._items and not replace and self._items[name] is not item:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        """Return the item called ``name`` or raise ``UnknownNameError``."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._items) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)

