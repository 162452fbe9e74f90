"""Run an image -> image pipeline over files, folders and globs, the way every task's CLI does.

Outputs mirror the inputs' relative paths under ``--out`` and never leave it; two inputs
whose results would land on one file are refused before anything runs, as is writing over
an input; a file that cannot be read is skipped with one warning; the summary says how many
failed and the exit code is 1 if any did. Folders and globs leave out artgan's own outputs
(``photo.style-transfer.jpg``, ``scan.restored.png``, ``scan.mask.png``), so running a
command twice over a folder does not process the first run's results; a file named on the
command line is always processed.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import click
from PIL import Image

from artgan import plugins
from artgan.errors import ArtganError
from artgan.imageio import (
    IMAGE_EXTENSIONS,
    default_output_path,
    find_images,
    read_image,
    write_image,
)
from artgan.plugins import warn


def output_suffixes() -> set[str]:
    """Every ``<suffix>`` that an installed task puts in the names of its outputs
    (``photo.<suffix>.jpg``)."""
    suffixes: set[str] = set()
    for name in plugins.task_names():
        task = plugins.get_task(name)
        suffixes.update(task.output_suffixes())
    return suffixes


def is_own_output(path: Path, suffixes: Iterable[str]) -> bool:
    """Whether ``path`` is named like an artgan output: its stem ends in ``.<suffix>``."""
    return any(path.stem.endswith(f".{suffix}") for suffix in suffixes)


def expand_inputs(inputs: Sequence[str], suffix: str | None = None) -> list[tuple[Path, Path]]:
    """``find_images(inputs)`` without artgan's own outputs (``suffix``, the calling task's,
    and every installed task's) found in folders and globs, with a note on stderr saying
    how many were left out. Files named on the command line are all kept, and so are
    matches of a glob whose file-name part spells the suffix itself (``*.restored.png``)."""
    found = find_images(inputs)
    suffixes = output_suffixes() | ({suffix} if suffix else set())
    named = {os.path.realpath(item) for item in inputs if Path(item).is_file()}
    wanted = {known for item in inputs if _is_glob(item) for known in suffixes
              if f".{known}" in Path(item).name}
    skipped = [path for path, _ in found if os.path.realpath(path) not in named
               and is_own_output(path, suffixes - wanted)]
    if skipped:
        names = ", ".join(sorted({f".{known}" for path in skipped for known in suffixes
                                  if path.stem.endswith(f".{known}")}))
        some = "file" if len(skipped) == 1 else "files"
        print(f"note: skipped {len(skipped)} {some} named like artgan's own outputs ({names}); "
              "name a file on the command line to process it anyway", file=sys.stderr)
        left_out = set(skipped)
        found = [(path, relative) for path, relative in found if path not in left_out]
    if not found:
        also = " (only artgan's own outputs, skipped)" if skipped else ""
        raise ArtganError(f"no images found in {', '.join(inputs)}{also}")
    return found


def _is_glob(item: str) -> bool:
    return not Path(item).exists() and any(char in item for char in "*?[")


def output_paths(inputs: Sequence[str], out: str | None, suffix: str) -> list[tuple[Path, Path]]:
    """Pair each input image with where its result goes; refuse layouts that clobber inputs.

    Folders and globs leave out artgan's own outputs (see ``expand_inputs``)."""
    found = expand_inputs(inputs, suffix)
    if out is None:
        return [(path, default_output_path(path, suffix)) for path, _ in found]
    target = Path(out)
    single_file = (
        len(found) == 1 and target.suffix.lower() in IMAGE_EXTENSIONS and not target.is_dir()
    )
    if single_file:
        return [(found[0][0], target)]
    if target.exists() and not target.is_dir():
        raise ArtganError(f"--out {out}: exists and is not a folder")
    resolved = target.resolve()
    for item in inputs:
        if Path(item).is_dir() and Path(item).resolve() == resolved:
            raise ArtganError(f"--out {out} is the input folder; choose another output folder")
    pairs = [(path, target / _inside(relative, path)) for path, relative in found]
    for _, destination in pairs:
        if not destination.resolve().is_relative_to(resolved):
            raise ArtganError(f"--out {out}: {destination} would be written outside it")
    check_distinct(pairs)
    return pairs


def _inside(relative: Path, path: Path) -> Path:
    """``relative`` with its ``..`` resolved, or the bare file name if it would climb out
    of the folder it is relative to (a glob like ``in/*/../../x.png``)."""
    normal = Path(os.path.normpath(relative))
    if normal.is_absolute() or normal.parts[:1] == ("..",) or str(normal) == ".":
        return Path(path.name)
    return normal


def check_distinct(pairs: Iterable[tuple[Path, Path]]) -> None:
    """Refuse outputs that two inputs would both write: the second would silently replace
    the first, and the summary would count both as written."""
    seen: dict[str, Path] = {}
    for source, destination in pairs:
        key = os.path.normcase(os.path.abspath(destination))
        if key in seen:
            raise ArtganError(
                f"{seen[key]} and {source} would both be written to {destination}; give "
                "their folder instead of the files (outputs then mirror its layout), or "
                "run them separately"
            )
        seen[key] = source


def side_by_side(before: Image.Image, after: Image.Image, gap: int = 8) -> Image.Image:
    """``before`` (scaled to ``after``'s height) and ``after`` next to each other on white."""
    if before.height != after.height:
        width = max(1, round(before.width * after.height / before.height))
        before = before.resize((width, after.height), Image.Resampling.LANCZOS)
    both = Image.new(after.mode, (before.width + gap + after.width, after.height), "white")
    both.paste(before.convert(after.mode), (0, 0))
    both.paste(after, (before.width + gap, 0))
    return both


SUMMARY = {"nothing": "with nothing to do", "refused": "left alone (see above)"}
"""How the summary names outcomes other than "written" and "failed"; "refused" (a result
the task would not write unasked) makes the exit code 1, as a failure does."""

Handle = Callable[[Path, Path, list[Path]], str]
"""``handle(source, target, protected)``: do one file's work and write ``target`` (never
one of ``protected``); return "written" or another outcome of ``SUMMARY``."""


def process_files(pairs: Sequence[tuple[Path, Path]], handle: Handle, out: str | None = None,
                  *, protected: Sequence[Path] = (), progress: bool = True) -> int:
    """The one loop over (input, output) pairs that every task runs: a file that fails costs
    one ``warning:`` line naming it and the rest go on (a single input's error is raised, so
    it is the command's one-line error), then one summary; returns the exit code, 1 if any
    failed or was refused. ``protected``: more files never to write over (the inputs always
    are); ``progress``: a progress bar, for tasks that say nothing per file."""
    kept = [path for path, _ in pairs] + list(protected)
    counts: Counter[str] = Counter()
    with click.progressbar(pairs, label="images", file=sys.stderr, hidden=not progress,
                           item_show_func=lambda p: p[0].name if p else "") as bar:
        for source, target in bar:
            try:
                counts[handle(source, target, kept)] += 1
            except ArtganError as exc:
                if str(source) not in str(exc):  # say which picture, once
                    exc = ArtganError(f"{source}: {exc}")
                if len(pairs) == 1:
                    raise exc from None
                warn(f"skipped: {exc}")
                counts["failed"] += 1
    where = out if out is not None else "beside the inputs"
    others = "".join(f", {counts[key]} {label}" for key, label in SUMMARY.items() if counts[key])
    print(f"{counts['written']} of {len(pairs)} images written ({where}){others}; "
          f"{counts['failed']} failed", file=sys.stderr)
    return 1 if counts["failed"] or counts["refused"] else 0


def write_results(pipeline: Callable[[Image.Image], Image.Image], compare: bool = False
                  ) -> Handle:
    """The ``Handle`` of an image-to-image task: read the picture (EXIF, modes, alpha), run
    ``pipeline`` on it and write the result with the picture's alpha; with ``compare``, the
    input and the result side by side."""

    def handle(source: Path, target: Path, protected: list[Path]) -> str:
        picture = read_image(source)
        result = pipeline(picture.rgb)
        alpha = picture.alpha
        if compare:
            result, alpha = side_by_side(picture.rgb, result), None
        if alpha is not None and alpha.size != result.size:
            alpha = alpha.resize(result.size, Image.Resampling.BILINEAR)
        write_image(result, target, alpha=alpha, inputs=protected)
        return "written"

    return handle
