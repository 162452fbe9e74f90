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
AMX), else float32, with torch's thread count; a style generator's for the shape of the
picture or tile it runs (``OpenVINOModel``'s ``static``).

Style generators come in three variants, because ``artgan.infer.translate`` runs a large
picture in tiles whose instance norms share statistics measured on a shrunk copy: torch
folds those into the weights, which a cached network cannot hold (they differ for every
picture). The tiled variant is cached with the statistics as two extra inputs, and bound to
each picture's statistics when its tiles run (``OpenVINOStyle.frozen``); a third returns the
statistics of the shrunk copy (``OpenVINOStyle.stats``). Pictures of up to ``WHOLE_TILES``
tiles' area use the ordinary network, in one pass: their instance norms see the whole
picture, which the shared statistics only approximate, and no statistics pass is needed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Sequence
from contextlib import suppress
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from artgan import __version__, infer, store
from artgan.atomic import atomic_path
from artgan.errors import ArtganError
from artgan.task import BACKENDS

MISSING_EXTRA = 'the openvino backend needs the openvino extra: pip install "artgan[openvino]"'
CONVERSION = 2  # raised whenever artgan's networks convert differently: a new cache entry
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


def choose(backend: str, device: str) -> tuple[str, torch.device]:
    """The backend (``torch`` or ``openvino``) and torch device for ``--backend`` and
    ``--device``: ``auto`` is OpenVINO when it is installed and the device is the CPU;
    OpenVINO makes device ``auto`` the CPU, and refuses any other device."""
    if backend not in BACKENDS:
        raise ArtganError(f"unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    target = infer.pick_device("cpu" if backend == "openvino" and device == "auto" else device)
    if backend == "auto":
        if target.type != "cpu":
            return "torch", target  # without importing OpenVINO, which it would not run
        try:
            openvino()
        except ArtganError:
            return "torch", target
        return "openvino", target
    if backend == "openvino":
        if target.type != "cpu":
            raise ArtganError(f"--backend openvino runs on the CPU, not {target}: "
                              "use --device cpu")
        openvino()
    return backend, target


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


def cached(key: str | None, make: Callable[[], Any]) -> Any:
    """The model cached as ``key`` (see ``cache_path``), or ``make()``'s, saved there
    atomically; a ``key`` of None (a network without a file) is never cached."""
    if key is None:
        return make()
    xml = cache_path(key)
    if xml.is_file() and xml.with_suffix(".bin").is_file():
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
    """A compiled OpenVINO model called like a torch network: tensors in, a float32 tensor
    (its first output) out, on the CPU.

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
    cannot be written or a kept file is damaged."""

    def __init__(self, model: Any, static: bool = False, keep: bool = False):
        if static and keep:
            raise ValueError("only a model of dynamic shapes keeps its compilation")
        self.model = model
        self.static = static
        self.config = {
            "INFERENCE_PRECISION_HINT": "bf16" if infer.cpu_has_bf16() else "f32",
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
        }
        if keep:
            self.config["CACHE_DIR"] = str(cache_dir() / "compiled")
        self.shapes: list[tuple[int, ...]] | None = None
        self.compiled = None if static else _core().compile_model(model, "CPU", self.config)

    def _compiled_for(self, shapes: list[tuple[int, ...]]) -> Any:
        if self.static and shapes != self.shapes:
            model = self.model.clone()
            model.reshape({port: list(shape) for port, shape
                           in zip(model.inputs, shapes, strict=True)})
            self.compiled = None  # the old compilation's memory goes before the new's comes
            self.compiled = _core().compile_model(model, "CPU", self.config)
            self.shapes = shapes
        return self.compiled

    def __call__(self, *inputs: Tensor) -> Tensor:
        arrays = [x.detach().to("cpu", torch.float32).contiguous().numpy() for x in inputs]
        compiled = self._compiled_for([array.shape for array in arrays])
        return torch.from_numpy(compiled(arrays)[0])

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
    example = [torch.randn(2, latent_dim)]
    return dynamic(key, lambda: convert(network, example, [(-1, latent_dim)]))


class _StatsInputs(nn.Module):
    """``network`` whose instance norms (``norms``, ``inference_norms``' order) apply the
    statistics given as inputs: (mean, rstd) of every norm, concatenated."""

    def __init__(self, network: nn.Module, norms: list[infer.InferenceInstanceNorm],
                 channels: list[int]):
        super().__init__()
        self.network = network
        self.norms = norms  # a plain list: they are already inside ``network``
        self.channels = channels

    def forward(self, image: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
        for norm, m, r in zip(self.norms, mean.split(self.channels),
                              rstd.split(self.channels), strict=True):
            norm.frozen = (m, r)
        return self.network(image)


class _StatsOutputs(nn.Module):
    """``network`` returning, instead of its picture, the statistics its instance norms
    (``norms``, recording) measure: (2, total) rows mean and rstd, every norm's
    channels concatenated."""

    def __init__(self, network: nn.Module, norms: list[infer.InferenceInstanceNorm]):
        super().__init__()
        self.network = network
        self.norms = norms  # a plain list: they are already inside ``network``

    def forward(self, image: Tensor) -> Tensor:
        self.network(image)
        recorded = [norm.recorded for norm in self.norms]
        return torch.stack([torch.cat([stats[row][0] for stats in recorded])  # type: ignore[index]
                            for row in (0, 1)])


def _flat(stats: infer.Stats) -> tuple[Tensor, Tensor]:
    """The (mean, rstd) of every norm of one image, concatenated: ``_StatsInputs``' inputs."""
    return (torch.cat([mean[0] for mean, _ in stats]),
            torch.cat([rstd[0] for _, rstd in stats]))


class OpenVINOStyle:
    """An image -> image network with instance norms, run by OpenVINO as
    ``artgan.infer.translate`` asks (its ``Backend``); each variant is converted, or read
    from the cache, the first time it is needed."""

    whole_tiles = WHOLE_TILES

    def __init__(self, network: nn.Module, key: str | None, multiple: int = 4):
        self.network = network
        self.key = key
        self.example = torch.rand(1, 3, 16 * multiple, 16 * multiple)

    @cached_property
    def _whole(self) -> OpenVINOModel:
        shapes = [(-1, 3, -1, -1)]
        key = self.key and f"{self.key}.image"
        model = cached(key, lambda: convert(self.network, [self.example], shapes))
        return OpenVINOModel(model, static=True)

    @cached_property
    def _with_stats(self) -> Any:
        """The ``openvino.Model`` of ``_StatsInputs``: inputs image, mean, rstd."""
        def make() -> Any:
            stats = infer.instance_norm_stats(self.network, self.example)  # example values
            channels = [mean.shape[1] for mean, _ in stats]
            with infer.inference_norms(self.network) as norms:
                module = _StatsInputs(self.network, norms, channels)
                total = sum(channels)
                return convert(module, [self.example, *_flat(stats)],
                               [(-1, 3, -1, -1), (total,), (total,)])

        return cached(self.key and f"{self.key}.image+stats", make)

    @cached_property
    def _stats(self) -> tuple[OpenVINOModel, list[int]]:
        """The ``_StatsOutputs`` model, and the channels of each norm."""
        example = infer.instance_norm_stats(self.network, self.example)
        channels = [mean.shape[1] for mean, _ in example]
        with infer.inference_norms(self.network) as norms:
            for norm in norms:
                norm.record = True
            module = _StatsOutputs(self.network, norms)
            key = self.key and f"{self.key}.stats"
            # dynamic shapes: OpenVINO 2026.4 crashes compiling this one for a shape in f32
            model = dynamic(key, lambda: convert(module, [self.example], [(1, 3, -1, -1)]))
        return model, channels

    def __call__(self, images: Tensor) -> Tensor:
        return self._whole(images)

    def stats(self, image: Tensor) -> infer.Stats:
        """The instance-norm statistics of one picture (1, 3, H, W), measured by OpenVINO:
        the shrunk copy's pass was torch's half of a tiled run's time."""
        model, channels = self._stats
        mean, rstd = model(image)
        model.release()  # its buffers (0.65 GB at 1024x680) are no use to the tiles next
        return [(m.view(1, -1), r.view(1, -1))
                for m, r in zip(mean.split(channels), rstd.split(channels), strict=True)]

    def frozen(self, stats: infer.Stats) -> OpenVINOModel:
        """The tiled variant compiled with ``stats`` bound as constants: OpenVINO then folds
        each norm's affine map into its convolution, as torch does (a third faster per tile
        than feeding them as inputs); compiling takes a fraction of a second per picture."""
        constant = openvino().opset13.constant
        model = self._with_stats.clone()
        for parameter, values in zip(model.get_parameters()[1:], _flat(stats), strict=True):
            value = constant(values.to("cpu", torch.float32).numpy()).output(0)
            for target in list(parameter.output(0).get_target_inputs()):
                target.replace_source_output(value)
            model.remove_parameter(parameter)
        return OpenVINOModel(model, static=True)


class OpenVINONetwork(nn.Module):
    """A torch network whose forward runs in OpenVINO (a restore model's detector and
    inpainter): the torch network stays inside for what callers read of it (``multiple``,
    ``outputs``, its CPU parameters), so the code around it runs unchanged. ``example``
    holds one (N, C, H, W) picture per input; batch, height and width are dynamic, so
    pictures and windows of any size are one cached conversion."""

    def __init__(self, network: nn.Module, key: str | None, example: Sequence[Tensor]):
        super().__init__()
        self.network = network
        self.multiple = network.multiple
        self.outputs = getattr(network, "outputs", 1)
        shapes = [(-1, x.shape[1], -1, -1) for x in example]
        self.compiled = dynamic(key, lambda: convert(network, example, shapes))

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.compiled(*inputs)
