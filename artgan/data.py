"""Training data: folders of images of any size and mode, as batches of square tensors.

Users bring their own folders of art, so anything goes: mixed sizes, greyscale, alpha,
16-bit PNGs, the odd corrupt file. Small folders are decoded once and kept in memory,
because GAN training loops over a few hundred pictures many thousands of times.

Training reads an endless stream of items (``training_loader``) in which both the order and
every item's random crop and flip are a function of the seed and the item's position in
the stream alone, so a run resumed at step N reads exactly what an uninterrupted run reads
from step N on, whatever the number of data workers.
"""

from __future__ import annotations

import contextvars
import math
import os
import sys
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from time import monotonic
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, Sampler, Subset

from artgan import plugins
from artgan.convert import pil_to_uint8
from artgan.errors import ArtganError
from artgan.imageio import IMAGE_EXTENSIONS, ImageError, find_images, read_image

CACHE_LIMIT = 2000  # folders with fewer images are kept decoded in memory by default
CROP_MARGIN = 1.15  # images are kept this much larger than the crop, room for random crops
CACHE_QUIET_SECONDS = 2.0  # caching that is done by then says nothing
CACHE_PROGRESS_SECONDS = 10.0  # between "caching N pictures ... P%" lines after that


def resize_shorter(image: Image.Image, side: int) -> Image.Image:
    """Scale ``image`` so its shorter side is ``side`` pixels, keeping the aspect ratio."""
    width, height = image.size
    scale = side / min(width, height)
    new_size = (max(side, round(width * scale)), max(side, round(height * scale)))
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BICUBIC, reducing_gap=2.0)


# The seed of the item being read from a training stream (see ``SeededItems``): a fresh
# one-element tuple per item, so two items are told apart even if their seeds were equal.
_ITEM_SEED: contextvars.ContextVar[tuple[int] | None] = contextvars.ContextVar(
    "artgan_item_seed", default=None)


class _WorkerRandom:
    """The generator a dataset draws its crops and flips from, plus a salt that keeps two
    datasets from drawing identical numbers.

    Read through ``SeededItems`` (training), it is seeded by the item's own seed, so what an
    item draws depends on nothing else. Read directly, it is seeded from
    ``torch.initial_seed()`` (each DataLoader worker has its own), leaving the global RNG
    that the training loop uses alone.
    """

    def __init__(self, salt: str):
        self._salt = zlib.crc32(salt.encode())
        self._seed: int | tuple[int] | None = None
        self._generator = torch.Generator()

    def get(self) -> torch.Generator:
        item = _ITEM_SEED.get()
        if item is not None:
            if item is not self._seed:
                self._seed = item
                self._generator.manual_seed((item[0] + self._salt) % 2**63)
            return self._generator
        seed = torch.initial_seed()
        if seed != self._seed:
            self._seed = seed
            self._generator.manual_seed((seed + self._salt) % 2**64)
        return self._generator


def _mix(*values: int) -> int:
    """A well-spread 63-bit seed from integers (splitmix64's finaliser over their sum)."""
    x = 0
    for value in values:
        x = (x + value * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % 2**64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) % 2**64
        x ^= x >> 31
    return x % 2**63


class StreamSampler(Sampler):
    """An endless stream of ``(index, item seed)``: epoch after epoch of a permutation
    fixed by ``(seed, epoch)``, each position's item seed fixed by ``(seed, position)``.

    ``start`` skips that many items (of this process) at no cost; with ``replicas``
    processes, process ``rank`` takes every ``replicas``-th position of one shared stream.
    """

    def __init__(self, count: int, seed: int = 0, start: int = 0, shuffle: bool = True,
                 rank: int = 0, replicas: int = 1):
        self.count, self.seed, self.start, self.shuffle = count, seed, start, shuffle
        self.rank, self.replicas = rank, replicas

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.count))
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch, 1))
        return torch.randperm(self.count, generator=generator).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        position = self.start * self.replicas + self.rank
        epoch, order = -1, []
        while True:
            current, offset = divmod(position, self.count)
            if current != epoch:
                epoch, order = current, self._order(current)
            yield order[offset], _mix(self.seed, position, 2)
            position += self.replicas


class SeededItems(Dataset):
    """``dataset`` read by ``(index, item seed)`` keys: every random draw the item makes
    (crops, flips, pairings) comes from its own seed."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        token = _ITEM_SEED.set((seed,))
        try:
            return self.dataset[index]
        finally:
            _ITEM_SEED.reset(token)


def holdout_split(
    paths: Sequence[Path], count: int, option: str = "--holdout"
) -> tuple[list[Path], list[Path]]:
    """``(kept, held out)``: the last ``count`` paths by name are held out for evaluation.

    Training and the quality benchmarks pick their held-out pictures with this one rule, so
    a model trained with ``--holdout N`` never saw the pictures it is scored on.
    """
    ordered = sorted(paths)
    if count < 0 or count >= len(ordered):
        raise ArtganError(
            f"{option} {count}: must be at least 0 and leave some of the {len(ordered)} images"
        )
    return ordered[: len(ordered) - count], ordered[len(ordered) - count:]


class ImageFolder(Dataset):
    """Images found recursively under ``root`` as (3, size, size) tensors in [-1, 1].

    Training items are random square crops covering ``scale`` of the largest square's
    area, flipped half the time; with ``random_crop=False`` the centre square is used.
    With ``load_size`` the image is first scaled so its shorter side is ``load_size`` and
    crops of exactly ``size`` are cut at that scale (CycleGAN's load/crop): a fully
    convolutional network then learns textures at the scale it will later be run at.
    ``cache=None`` keeps decoded images in memory when there are fewer than CACHE_LIMIT;
    decoding them says how far it is on stderr when it takes a while (``_CacheProgress``).
    Unreadable files are skipped with one warning each.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        size: int,
        *,
        random_crop: bool = True,
        flip: bool = True,
        cache: bool | None = None,
        scale: tuple[float, float] = (0.8, 1.0),
        load_size: int | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ArtganError(f"{self.root}: no such folder")
        if size < 1:
            raise ArtganError(f"image size must be positive, got {size}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ArtganError(f"crop scale must satisfy 0 < low <= high <= 1, got {scale}")
        if load_size is not None and load_size < size:
            raise ArtganError(f"load size {load_size} must be at least the crop size {size}")
        self.paths = [path for path, _relative in find_images([str(self.root)])]
        if not self.paths:
            kinds = ", ".join(IMAGE_EXTENSIONS)
            raise ArtganError(f"{self.root}: no images found (looked for {kinds})")
        self.size = size
        self.random_crop = random_crop
        self.flip = flip
        self.scale = scale
        self.load_size = load_size
        # Random crops need room to move; centre crops are cut at the final size directly.
        if load_size is not None:
            self._side = load_size
        else:
            self._side = round(size * CROP_MARGIN) if random_crop else size
        self._random = _WorkerRandom(f"ImageFolder:{self.root}")
        self._unreadable: set[Path] = set()
        self._cache: list[Tensor] | None = None
        if cache if cache is not None else len(self.paths) < CACHE_LIMIT:
            self._cache = self._decode_all()

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, paths: Sequence[Path]) -> Subset:
        """The items of these ``paths`` only (e.g. the kept part of ``holdout_split``)."""
        wanted = set(paths)
        return Subset(self, [i for i, path in enumerate(self.paths) if path in wanted])

    def __getitem__(self, index: int) -> Tensor:
        return self._augment(self._image(index))

    def _decode(self, path: Path) -> Tensor:
        """uint8 (3, h, w) with the shorter side ``self._side``; raises ImageError."""
        return pil_to_uint8(resize_shorter(read_image(path).rgb, self._side))

    def _decode_all(self) -> list[Tensor]:
        """Decode every image once (threads: Pillow releases the GIL while decoding)."""

        def attempt(path: Path) -> Tensor | ImageError:
            try:
                return self._decode(path)
            except ImageError as error:
                return error

        progress = _CacheProgress(len(self.paths), self.root)
        results = []
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for result in pool.map(attempt, self.paths):
                results.append(result)
                progress.update(len(results))
        progress.done()
        images, paths = [], []
        for path, result in zip(self.paths, results, strict=True):
            if isinstance(result, ImageError):
                self._skip(path, result)
            else:
                images.append(result)
                paths.append(path)
        if not images:
            raise ArtganError(f"{self.root}: none of its {len(self.paths)} images could be read")
        self.paths = paths
        return images

    def _image(self, index: int) -> Tensor:
        """The decoded image at ``index``, or the next readable one after it."""
        if self._cache is not None:
            return self._cache[index]
        for offset in range(len(self.paths)):
            path = self.paths[(index + offset) % len(self.paths)]
            if path in self._unreadable:
                continue
            try:
                return self._decode(path)
            except ImageError as error:
                self._skip(path, error)
        raise ArtganError(f"{self.root}: none of its {len(self.paths)} images could be read")

    def _skip(self, path: Path, error: ImageError) -> None:
        self._unreadable.add(path)
        plugins.warn(f"skipping {error}")

    def _augment(self, image: Tensor) -> Tensor:
        _, height, width = image.shape
        shorter = min(height, width)
        if self.random_crop:
            generator = self._random.get()
            if self.load_size is not None:
                side = min(self.size, shorter)
            else:
                low, high = self.scale
                area = low + (high - low) * float(torch.rand((), generator=generator))
                side = max(1, round(shorter * math.sqrt(area)))
            top = int(torch.randint(0, height - side + 1, (), generator=generator))
            left = int(torch.randint(0, width - side + 1, (), generator=generator))
        else:
            side = shorter
            top, left = (height - side) // 2, (width - side) // 2
        crop = image[:, top : top + side, left : left + side].float()[None]
        if self.flip and float(torch.rand((), generator=self._random.get())) < 0.5:
            crop = crop.flip(-1)
        if side != self.size:
            crop = F.interpolate(
                crop,
                size=(self.size, self.size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        return (crop[0] / 127.5 - 1).clamp(-1, 1)


class _CacheProgress:
    """Lines on stderr while a folder is decoded into memory, paced by the clock (a big
    folder can keep a run silent for a long while before its first step): none when it is
    done within ``CACHE_QUIET_SECONDS``, else one every ``CACHE_PROGRESS_SECONDS`` and one
    when done. Only the first process of a multi-process run speaks."""

    def __init__(self, total: int, root: Path):
        self.total, self.root = total, root
        self.started = monotonic()
        self.shown: float | None = None  # when the last line was written
        self.quiet = os.environ.get("RANK", "0") != "0"

    def update(self, done: int) -> None:
        if self.quiet or done >= self.total:
            return
        now = monotonic()
        if now - self.started < CACHE_QUIET_SECONDS:
            return
        if self.shown is not None and now - self.shown < CACHE_PROGRESS_SECONDS:
            return
        self.shown = now
        self._write(f"caching {self.total} pictures of {self.root} in memory ... "
                    f"{100 * done // self.total}%")

    def done(self) -> None:
        if self.shown is not None:
            self._write(f"cached {self.total} pictures of {self.root} "
                        f"({monotonic() - self.started:.0f} s)")

    @staticmethod
    def _write(text: str) -> None:
        print(text, file=sys.stderr, flush=True)


class UnpairedDataset(Dataset):
    """Pairs of images from two unrelated folders, for unpaired translation (CycleGAN).

    Item ``i`` is ``a[i % len(a)]`` with a random ``b``, so every epoch sees all of the
    larger folder and a fresh pairing.
    """

    def __init__(self, a: ImageFolder, b: ImageFolder):
        self.a = a
        self.b = b
        self._random = _WorkerRandom("UnpairedDataset")

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        other = int(torch.randint(0, len(self.b), (), generator=self._random.get()))
        return self.a[index % len(self.a)], self.b[other]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    workers: int = 0,
    seed: int = 0,
    drop_last: bool = True,
    distributed: bool = False,
) -> DataLoader:
    """A DataLoader whose order is fixed by ``seed``; sharded across processes if distributed."""
    count = len(dataset)
    replicas = dist.get_world_size() if distributed else 1
    per_process = math.ceil(count / replicas)
    if drop_last and per_process < batch_size:
        where = f" on each of {replicas} processes" if replicas > 1 else ""
        raise ArtganError(
            f"{_source(dataset)} has {count} images, fewer than the batch size {batch_size}{where}"
        )
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if distributed else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        generator=torch.Generator().manual_seed(seed),
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


def training_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    start: int = 0,
    seed: int = 0,
    workers: int = 0,
    distributed: bool = False,
) -> DataLoader:
    """Endless training batches of ``dataset`` from step ``start`` on (see the module's
    docstring): a resumed run passes the step it resumes at and reads what it would have."""
    rank = dist.get_rank() if distributed else 0
    replicas = dist.get_world_size() if distributed else 1
    if len(dataset) < batch_size * replicas:
        where = f" on each of {replicas} processes" if replicas > 1 else ""
        raise ArtganError(f"{_source(dataset)} has {len(dataset)} images, fewer than the batch "
                          f"size {batch_size}{where}")
    sampler = StreamSampler(len(dataset), seed, start * batch_size, rank=rank,
                            replicas=replicas)
    return DataLoader(
        SeededItems(dataset),
        batch_sampler=BatchSampler(sampler, batch_size, drop_last=False),
        num_workers=workers,
        # its own generator: the loader must not draw from the global RNG, whose state the
        # checkpoint restores for the training step to continue exactly
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


def _source(dataset: Dataset) -> str:
    """The folder to name in messages: for unpaired data, the larger one sets the length."""
    if isinstance(dataset, UnpairedDataset):
        return _source(max(dataset.a, dataset.b, key=len))
    return str(getattr(dataset, "root", "the dataset"))


def infinite(loader: DataLoader) -> Iterator[Any]:
    """Batches forever, epoch after epoch, telling a distributed sampler the epoch."""
    epoch = 0
    while True:
        set_epoch = getattr(loader.sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ArtganError("the data loader gives no batches")
        epoch += 1
