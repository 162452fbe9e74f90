"""Running a network with OpenVINO instead of eager torch, on the CPU.

Why: on CPUs OpenVINO runs artgan's generators much faster than torch. Issue 21's probe
measured the style generator at 1024 px 2.6x faster than torch's bf16 autocast (AMD EPYC
with AVX-512-BF16, 2 threads); ``benchmarks/bench_style.py`` prints the figures for the
machine it runs on. So ``--backend auto`` (the default) uses OpenVINO whenever it is installed
(``pip install "artgan[openvino]"``) and the network runs on the CPU; on a GPU torch stays.

A network is converted once (``openvino.convert_model`` traces it) and saved under
``$ARTGAN_HOME/cache/openvino/``, named by the sha256 of its weights file, the network, the
OpenVINO and artgan versions and ``CONVERSION`` (each can change what a conversion gives);
later loads read the saved model and only compile it. A cache entry that cannot be read is
converted again; past ``CACHE_BUDGET`` a new conversion deletes the least recently used.
Models are compiled for the CPU in bfloat16 where it computes it natively (AVX-512-BF16,
AMX), else float32, with torch's thread count (``artgan.cpu.threads``); a style generator's
for the shape of the picture or tile it runs (``OpenVINOModel``'s ``static``).

Style generators come in three variants, because ``artgan.infer.translate`` runs a large
picture in tiles whose instance norms share statistics measured on a shrunk copy: torch
folds those into the weights, which a cached network cannot hold (they differ for every
picture). The tiled variant is cached with the statistics as two extra inputs, and bound to
each picture's statistics when its tiles run (``OpenVINOStyle.frozen``); a third returns the
statistics of the shrunk copy (``OpenVINOStyle.stats``). Pictures of up to ``WHOLE_TILES``
tiles' area use the ordinary network, in one pass: their instance norms see the whole
picture, which the shared statistics only approximate, and no statistics pass is needed.

This module loads without torch, which it imports only to convert a network or to run one
on tensors: a style picture run in one pass from a cached conversion goes through numpy
alone (``OpenVINOStyle.paint``), and so does the whole ``artgan run style-transfer`` process
around it, for which torch's import (over a second) was most of the time left on a
2048 px photo.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from artgan import __version__, cpu, store
from artgan.atomic import atomic_path
from artgan.errors import ArtganError
from artgan.task import BACKENDS

if TYPE_CHECKING:  # torch is imported where a network is converted or run from tensors
    from torch import Tensor, nn

    from artgan.infer import Stats

MISSING_EXTRA = 'the openvino backend needs the openvino extra: pip install "artgan[openvino]"'
CONVERSION = 5  # raised whenever artgan's networks convert differently: a new cache entry
# OpenVINO runs a style picture of up to 4 tiles' area in one pass, with no statistics pass:
# 2048x2048 at the default tile, whose process peaks at 1.4 GB, under the 1.5 GB that the
# torch path keeps to at any size (OpenVINO needs about half torch's memory per pixel)
WHOLE_TILES = 4
# bytes the cache folder keeps: past this, a new conversion deletes the least recently used
# entries (a retrained model leaves its old conversions behind: 0.4 GB after a few days of
# development here); about 20 models' conversions and kept compilations
CACHE_BUDGET = 1 << 30


def openvino() -> Any:
    """The ``openvino`` module, or one ArtganError naming the extra to install."""
    try:
        import openvino as ov
    except ImportError:
        raise ArtganError(MISSING_EXTRA) from None
    return ov


def choose(backend: str, device: str) -> tuple[str, str]:
    """The backend (``torch`` or ``openvino``) and device name for ``--backend`` and
    ``--device``: ``auto`` is OpenVINO when it is installed and the device is the CPU;
    OpenVINO makes device ``auto`` the CPU, and refuses any other device.

    Where the device is the CPU by name (or ``auto`` for OpenVINO) torch is not asked, so a
    task can leave it unloaded until a network runs in torch; otherwise
    ``infer.pick_device`` finds out which devices there are."""
    if backend not in BACKENDS:
        raise ArtganError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    if device == "cpu" or (backend == "openvino" and device == "auto"):
        return _on_the_cpu(backend), "cpu"
    from artgan import infer

    target = infer.pick_device(device)
    if target.type == "cpu":
        return _on_the_cpu(backend), str(target)
    if backend == "openvino":
        raise ArtganError(f"--backend openvino runs on the CPU, not {target}: use --device cpu")
    return "torch", str(target)  # without importing OpenVINO, which it would not run


def _on_the_cpu(backend: str) -> str:
    """What runs a network on the CPU for ``--backend``: OpenVINO when asked (or one line
    naming the missing extra), or for ``auto`` when it is installed."""
    if backend == "openvino":
        openvino()
        return "openvino"
    return "openvino" if backend == "auto" and installed() else "torch"


def installed() -> bool:
    """Whether the openvino extra is installed (and imports)."""
    try:
        openvino()
    except ArtganError:
        return False
    return True


def weights_key(path: str | os.PathLike, network: str) -> str:
    """The cache name of ``network`` of the model file ``path``: what it is, then the sha256
    of the file (not its name: a file overwritten by new training gets a new entry)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{network}-{digest.hexdigest()[:32]}"


def cache_dir() -> Path:
    """``$ARTGAN_HOME/cache/openvino`` (beside the user model folder)."""
    return store.user_model_dir().parent / "cache" / "openvino"


def convert(module: nn.Module, example: Sequence[Tensor], shapes: Sequence[Sequence[int]]) -> Any:
    """``module`` as an ``openvino.Model``, traced on ``example`` inputs; ``shapes`` gives
    each input's shape, -1 where it is dynamic."""
    import torch

    ov = openvino()
    inputs = [ov.PartialShape(list(shape)) for shape in shapes]
    with (torch.no_grad(), torch.autocast("cpu", enabled=False),  # autocast ops don't convert
          warnings.catch_warnings()):
        warnings.simplefilter("ignore")  # the tracer's warnings are about what it records
        return ov.convert_model(module.eval(), example_input=tuple(example), input=inputs)


def cache_path(key: str) -> Path:
    """The .xml of ``key`` for this OpenVINO, artgan and ``CONVERSION`` (its weights beside it
    as .bin)."""
    version = openvino().__version__.split("-")[0]
    return cache_dir() / f"{key}.ov{version}.artgan{__version__}.c{CONVERSION}.xml"


@cache
def _core() -> Any:
    return openvino().Core()


@cache
def _compiler() -> ThreadPoolExecutor:
    """The threads that compile models of dynamic shapes while their callers go on
    (``OpenVINOModel``): two, for the two networks of a restore model."""
    return ThreadPoolExecutor(2, thread_name_prefix="openvino-compile")


def inference_precision() -> str:
    """``bf16`` where the CPU computes it natively (``artgan.cpu.has_native_bf16``, as torch's
    autocast), else ``f32``."""
    return "bf16" if cpu.has_native_bf16() else "f32"


def in_cache(key: str) -> bool:
    """Whether a conversion is saved as ``key`` (both its files: ``save`` writes the .xml
    last)."""
    xml = cache_path(key)
    return xml.is_file() and xml.with_suffix(".bin").is_file()


def cached(key: str | None, make: Callable[[], Any]) -> Any:
    """The model cached as ``key`` (see ``cache_path``), or ``make()``'s, saved there
    atomically; a ``key`` of None (a network without a file) is never cached."""
    if key is None:
        return make()
    xml = cache_path(key)
    if in_cache(key):
        try:
            model = _core().read_model(str(xml))
        except RuntimeError:
            pass  # truncated or garbled: converted again below, and replaced
        else:
            _touch(xml)
            return model
    model = make()
    prune(cache_dir(), CACHE_BUDGET)  # before the save: the new entry never goes
    save(model, xml)
    return _core().read_model(str(xml))  # as every later load reads it: one compilation kept


def _touch(xml: Path) -> None:
    """Mark a cache entry as just used, for ``prune`` (a read-only cache still serves)."""
    for path in (xml, xml.with_suffix(".bin")):
        with suppress(OSError):
            os.utime(path)


def prune(folder: Path, budget: int) -> None:
    """Delete the least recently used entries of the cache ``folder`` until it holds at most
    ``budget`` bytes: conversions (an .xml and its .bin, used when read) and the kept
    compilations under ``compiled`` (used when written). A file that cannot be deleted (in
    use elsewhere, say) is left."""
    entries = [[xml, xml.with_suffix(".bin")] for xml in folder.glob("*.xml")]
    entries += [[blob] for blob in (folder / "compiled").glob("*.blob")]
    sized = []  # (last used, bytes, files)
    for files in entries:
        with suppress(OSError):  # deleted meanwhile by another process
            sized.append((files[0].stat().st_mtime,
                          sum(file.stat().st_size for file in files if file.exists()), files))
    total = sum(size for _, size, _ in sized)
    for _, size, files in sorted(sized, key=lambda entry: entry[0]):
        if total <= budget:
            break
        for file in files:  # the .xml first: a reader needs both
            with suppress(OSError):
                file.unlink(missing_ok=True)
        total -= size


def save(model: Any, xml: Path) -> Path:
    """Write ``model`` as OpenVINO IR, ``xml`` and the ``.bin`` beside it, each atomically
    and the ``.xml`` last, so a reader never meets a half-written pair."""
    ov = openvino()
    xml.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".convert.", dir=xml.parent))
    try:
        ov.save_model(model, str(folder / xml.name), compress_to_fp16=False)
        for suffix in (".bin", ".xml"):
            with atomic_path(xml.with_suffix(suffix)) as temporary:
                os.replace(folder / xml.with_suffix(suffix).name, temporary)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return xml


class OpenVINOModel:
    """A compiled OpenVINO model, run on numpy arrays (``run``) or called like a torch
    network (tensors in, its first output as a float32 tensor out), on the CPU.

    With ``static`` it is compiled for the shapes of its inputs, again whenever they change:
    OpenVINO then plans its kernels and memory for those shapes, where a model with dynamic
    shapes does that during its first run at each new shape, and less well. The style
    generator at 2048x1364, one thread: 0.2 s to compile, 1.7 s for the first run and 1.6 s
    for the next; dynamic, 2.4-2.5 s, then 1.9 s, and 0.3 GB more memory. Only the last
    shapes' compilation is kept, so a folder of pictures of one size compiles once and
    memory stays that of one picture.

    With ``keep`` (a model of dynamic shapes only: a static one would leave a file per
    picture size) OpenVINO keeps the compiled model under ``cache_dir()``'s ``compiled``
    folder and later loads it instead of compiling: the restore inpainter's compilation
    takes 0.67 s, its load 0.16 s (one thread). OpenVINO compiles afresh where that folder
    cannot be written or a kept file is damaged.

    A model of dynamic shapes is compiled in the background (``_compiler``), started here
    and waited for at its first run, so the compilation overlaps what its caller does
    meanwhile (the restore inpainter's 0.2 s, while ``artgan restore`` reads a 12-megapixel
    PNG on one core: 0.23 s less from loading to having the picture, 2 threads)."""

    def __init__(self, model: Any, static: bool = False, keep: bool = False):
        if static and keep:
            raise ValueError("only a model of dynamic shapes keeps its compilation")
        self.model = model
        self.static = static
        self.config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": inference_precision()}
        threads = cpu.threads()
        if threads:
            self.config["INFERENCE_NUM_THREADS"] = threads
        if keep:
            self.config["CACHE_DIR"] = str(cache_dir() / "compiled")
        self.shapes: list[tuple[int, ...]] | None = None
        self.compiled: Any = None
        self._compiling: Future | None = None
        if not static:
            _core()  # made here: two compiling threads would each make one
            self._compiling = _compiler().submit(self._compile, model)

    def _compile(self, model: Any) -> Any:
        return _core().compile_model(model, "CPU", self.config)

    def _compiled_for(self, shapes: list[tuple[int, ...]]) -> Any:
        compiling, self._compiling = self._compiling, None
        if compiling is not None:  # a failed compilation raises once; the next run retries
            self.compiled = compiling.result()
        if self.static and shapes != self.shapes:
            model = self.model.clone()
            model.reshape({port: list(shape) for port, shape
                           in zip(model.inputs, shapes, strict=True)})
            self.compiled = None  # the old compilation's memory goes before the new's comes
            self.compiled = self._compile(model)
            self.shapes = shapes
        elif self.compiled is None:
            self.compiled = self._compile(self.model)
        return self.compiled

    def run(self, *arrays: np.ndarray) -> np.ndarray:
        """The first output for float32 ``arrays``, one per input."""
        compiled = self._compiled_for([array.shape for array in arrays])
        return compiled(list(arrays))[0]

    def __call__(self, *inputs: Tensor) -> Tensor:
        import torch

        arrays = [x.detach().to("cpu", torch.float32).contiguous().numpy() for x in inputs]
        return torch.from_numpy(self.run(*arrays))

    def release(self) -> None:
        """Give back the memory its intermediate results took (the next call takes it again)."""
        if self.compiled is not None:
            self.compiled.release_memory()


def dynamic(key: str | None, make: Callable[[], Any]) -> OpenVINOModel:
    """The model of dynamic shapes ``cached`` as ``key`` (or ``make()``'s), compiled, its
    compilation kept beside the cache when it has a key."""
    return OpenVINOModel(cached(key, make), keep=key is not None)


def generator(network: nn.Module, latent_dim: int, key: str | None) -> OpenVINOModel:
    """A latents (N, ``latent_dim``) -> pictures network, batch size dynamic."""
    import torch

    example = [torch.randn(2, latent_dim)]
    return dynamic(key, lambda: convert(network, example, [(-1, latent_dim)]))


def padded(pixels: np.ndarray, multiple: int) -> np.ndarray:
    """(N, C, H, W) ``pixels`` reflect-padded (replicated if too small) at the bottom and
    right to sides that are multiples of ``multiple``: ``artgan.infer``'s padding."""
    height, width = pixels.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return pixels
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(pixels, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode=mode)


class OpenVINOStyle:
    """An image -> image network with instance norms, run by OpenVINO as
    ``artgan.infer.translate`` asks (its ``Backend``); each variant is converted, or read
    from the cache, the first time it is needed.

    ``network`` is called for the torch network (a [0, 1] -> [0, 1] one) only when a variant
    must be converted or a picture runs in tiles: a picture that fits ``fits_whole`` and
    whose conversion is cached runs through ``paint`` with numpy and OpenVINO alone, torch
    never imported."""

    def __init__(self, network: Callable[[], nn.Module], key: str | None, multiple: int = 4):
        self._load = network
        self.key = key
        self.multiple = multiple

    @cached_property
    def network(self) -> nn.Module:
        return self._load()

    @staticmethod
    def converted(key: str) -> bool:
        """Whether the one-pass variant of the network cached as ``key`` is in the cache."""
        return in_cache(f"{key}.image")

    @cached_property
    def example(self) -> Tensor:
        import torch

        return torch.rand(1, 3, 16 * self.multiple, 16 * self.multiple)

    def fits_whole(self, height: int, width: int, tile: int) -> bool:
        """Whether a picture runs in one pass, with its own statistics: it fits in a tile,
        or in ``WHOLE_TILES`` tiles' area, the largest whose one pass fits its memory bound."""
        return max(height, width) <= tile or height * width <= WHOLE_TILES * tile * tile

    @cached_property
    def _whole(self) -> OpenVINOModel:
        shapes = [(-1, 3, -1, -1)]
        key = self.key and f"{self.key}.image"  # as ``converted`` looks for it
        model = cached(key, lambda: convert(self.network, [self.example], shapes))
        return OpenVINOModel(model, static=True)

    @cached_property
    def _with_stats(self) -> Any:
        """The ``openvino.Model`` of ``StatsInputs``: inputs image, mean, rstd."""
        def make() -> Any:
            from artgan import infer
            from artgan.nn.openvino import StatsInputs, flat

            stats = infer.instance_norm_stats(self.network, self.example)  # example values
            channels = [mean.shape[1] for mean, _ in stats]
            with infer.inference_norms(self.network) as norms:
                module = StatsInputs(self.network, norms, channels)
                total = sum(channels)
                return convert(module, [self.example, *flat(stats)],
                               [(-1, 3, -1, -1), (total,), (total,)])

        return cached(self.key and f"{self.key}.image+stats", make)

    @cached_property
    def _stats(self) -> tuple[OpenVINOModel, list[int]]:
        """The ``StatsOutputs`` model, and the channels of each norm."""
        from artgan import infer
        from artgan.nn.openvino import StatsOutputs

        example = infer.instance_norm_stats(self.network, self.example)
        channels = [mean.shape[1] for mean, _ in example]
        with infer.inference_norms(self.network) as norms:
            for norm in norms:
                norm.record = True
            module = StatsOutputs(self.network, norms)
            key = self.key and f"{self.key}.stats"
            # dynamic shapes: OpenVINO 2026.4 crashes compiling this one for a shape in f32
            model = dynamic(key, lambda: convert(module, [self.example], [(1, 3, -1, -1)]))
        return model, channels

    def __call__(self, images: Tensor) -> Tensor:
        return self._whole(images)

    def paint(self, pixels: np.ndarray) -> np.ndarray:
        """One (H, W, 3) uint8 picture run whole, as uint8: the same pixels as
        ``artgan.infer.translate``'s one pass (same padding, division and rounding)."""
        height, width = pixels.shape[:2]
        batch = pixels.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
        result = self._whole.run(padded(batch, self.multiple))[0, :, :height, :width]
        result = np.clip(np.nan_to_num(result, nan=0.0), 0, 1) * np.float32(255)
        return np.round(result).astype(np.uint8).transpose(1, 2, 0)

    def stats(self, image: Tensor) -> Stats:
        """The instance-norm statistics of one picture (1, 3, H, W), measured by OpenVINO:
        the shrunk copy's pass was torch's half of a tiled run's time."""
        model, channels = self._stats
        mean, rstd = model(image)
        model.release()  # its buffers (0.65 GB at 1024x680) are no use to the tiles next
        return [(m.view(1, -1), r.view(1, -1))
                for m, r in zip(mean.split(channels), rstd.split(channels), strict=True)]

    def frozen(self, stats: Stats) -> OpenVINOModel:
        """The tiled variant compiled with ``stats`` bound as constants: OpenVINO then folds
        each norm's affine map into its convolution, as torch does (a third faster per tile
        than feeding them as inputs); compiling takes a fraction of a second per picture."""
        import torch

        from artgan.nn.openvino import flat

        constant = openvino().opset13.constant
        model = self._with_stats.clone()
        for parameter, values in zip(model.get_parameters()[1:], flat(stats), strict=True):
            value = constant(values.to("cpu", torch.float32).numpy()).output(0)
            for target in list(parameter.output(0).get_target_inputs()):
                target.replace_source_output(value)
            model.remove_parameter(parameter)
        return OpenVINOModel(model, static=True)
