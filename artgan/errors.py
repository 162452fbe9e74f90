"""Errors a user can cause and fix.

The CLI prints an ``ArtganError`` as one line and exits with its ``exit_code``;
anything else is a bug and shows its traceback only under ``--debug``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ArtganError(Exception):
    """A problem with the user's input, files or environment (exit code 1)."""

    exit_code = 1


class UnknownNameError(ArtganError):
    """A task, model, loss or other registered name that does not exist (exit code 2)."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        message = f"unknown {kind} {name!r}"
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if close:
            message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        elif known:
            message += f"; available: {', '.join(known)}"
        else:
            message += f"; no {kind}s are available"
        super().__init__(message)
        self.name = name
        self.known = known
