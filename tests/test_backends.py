"""The OpenVINO backend: the same pictures as torch fp32 (one pass, tiles with shared
statistics, alpha; generate), converted once into the cache, and one clear line without the
extra. OpenVINO compiles in f32 here (as if the CPU had no bfloat16), so results are
deterministic."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("openvino")

from cli_process import imports_of  # noqa: E402

import artgan  # noqa: E402
from artgan import ArtganError, backends, cpu, infer, store  # noqa: E402
from artgan.nn.openvino import OpenVINONetwork  # noqa: E402

MEAN, MAX = 0.5, 4  # on uint8 outputs
TINY = {"width": 4, "n_blocks": 1, "n_down": 2, "upsample": "nearest"}


@pytest.fixture(autouse=True)
def float32(monkeypatch):
    """torch without autocast, OpenVINO in f32."""
    monkeypatch.setattr(cpu, "has_native_bf16", lambda: False)  # both backends ask it


@pytest.fixture
def conversions(monkeypatch):
    """Counts ``backends.convert`` calls."""
    calls = []
    convert = backends.convert

    def counted(*args, **kwargs):
        calls.append(args)
        return convert(*args, **kwargs)

    monkeypatch.setattr(backends, "convert", counted)
    return calls


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny random style model in an empty ARTGAN_HOME (an empty cache)."""
    from artgan_style_transfer import cyclegan

    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    return str(store.save_model(cyclegan(**TINY), tmp_path / "tiny.safetensors",
                                task="style-transfer", architecture="cyclegan", config=TINY))


def _picture(width, height, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([np.sin(x / 9), np.cos(y / 7), np.sin((x + y) / 13)], -1) * 80 + 128
    pixels = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    if mode == "RGBA":
        alpha = (np.linspace(0, 255, width)[None, :] * np.ones((height, 1))).astype(np.uint8)
        pixels = np.dstack([pixels, alpha])
    return Image.fromarray(pixels, mode)


def _close(ours, theirs):
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    assert diff.mean() <= MEAN and diff.max() <= MAX, (diff.mean(), diff.max())


@pytest.mark.parametrize(("size", "tile", "mode"), [
    ((120, 88), 1024, "RGB"),  # one pass
    ((230, 170), 96, "RGBA"),  # 3 x 2 tiles with shared statistics, alpha kept aside
])
def test_style_matches_torch(size, tile, mode):
    picture = _picture(*size, mode)
    results = {}
    for backend in ("torch", "openvino"):
        pipe = artgan.load("style-transfer", "monet", backend=backend, tile=tile, overlap=16)
        assert (pipe.backend is None) == (backend == "torch") and pipe.dtype is None
        results[backend] = pipe(picture)
    assert results["openvino"].mode == mode and results["openvino"].size == size
    _close(results["openvino"], results["torch"])
    if mode == "RGBA":
        assert np.array_equal(np.array(results["openvino"])[..., 3], np.array(picture)[..., 3])


def test_a_picture_within_four_tiles_runs_in_one_pass(monkeypatch):
    """OpenVINO runs a picture of up to 4 tiles' area whole, so its instance norms see all
    of it, as torch's one pass does, and no statistics pass is needed."""
    picture = _picture(150, 110)  # 16500 px: over a 96 px tile, under 4 tiles' 36864
    theirs = artgan.load("style-transfer", "monet", backend="torch")(picture)  # one pass
    pipe = artgan.load("style-transfer", "monet", backend="openvino", tile=96, overlap=16)
    monkeypatch.setattr(pipe.backend, "stats", None)  # called, it would raise
    _close(pipe(picture), theirs)


class _CountingCore:
    """``backends._core()`` counting ``compile_model`` calls."""

    def __init__(self, core):
        self.core, self.compiled = core, 0

    def __getattr__(self, name):
        return getattr(self.core, name)

    def compile_model(self, *args, **kwargs):
        self.compiled += 1
        return self.core.compile_model(*args, **kwargs)


def test_one_compilation_serves_every_picture_of_its_size(monkeypatch):
    core = _CountingCore(backends._core())
    monkeypatch.setattr(backends, "_core", lambda: core)
    pipe = artgan.load("style-transfer", "monet", backend="openvino", tile=96, overlap=16)
    for seed in (0, 1):
        pipe(_picture(64, 48, seed=seed))
    assert core.compiled == 1
    pipe(_picture(48, 64))
    pipe(_picture(48, 64, seed=2))
    assert core.compiled == 2  # compiled again for the new size only
    pipe(_picture(230, 170))  # tiled: the statistics network, then all tiles' one
    assert core.compiled == 4


def test_a_model_runs_again_after_giving_its_memory_back():
    """The statistics network gives back its buffers before the tiles run (0.45 GB less
    peak for an 8000x6000 picture); a released model runs as before."""
    pipe = artgan.load("style-transfer", "monet", backend="openvino")
    model, _ = pipe.backend._stats
    image = torch.rand(1, 3, 64, 96)
    first = model(image)
    model.release()
    assert torch.equal(model(image), first)


class _FailingCore:
    def compile_model(self, *args, **kwargs):
        raise RuntimeError("no kernel for this CPU")


def test_a_model_compiles_in_the_background_and_a_failure_shows_at_its_first_run(
        monkeypatch):
    """A model of dynamic shapes compiles in a thread while its caller goes on; it runs as
    compiled at once, and a compilation that failed raises where the model is first run."""
    network = torch.nn.Conv2d(3, 3, 3, padding=1)
    image = torch.rand(1, 3, 16, 24)
    model = backends.OpenVINOModel(backends.convert(network, [image], [(-1, 3, -1, -1)]))
    assert torch.allclose(model(image), network(image), atol=0.05)
    core = backends._core()
    monkeypatch.setattr(backends, "_core", lambda: _FailingCore())
    failing = backends.OpenVINOModel(model.model)  # its thread raises; nothing is raised here
    with pytest.raises(RuntimeError, match="no kernel"):
        failing(image)
    monkeypatch.setattr(backends, "_core", lambda: core)  # a passing failure: tried again
    assert torch.allclose(failing(image), network(image), atol=0.05)


def test_float_pictures_match_torch_too():
    batch = torch.rand(2, 3, 64, 72)
    torch_out = artgan.load("style-transfer", "monet", backend="torch", reverse=True)(batch)
    ov_out = artgan.load("style-transfer", "monet", backend="openvino", reverse=True)(batch)
    assert ov_out.shape == batch.shape and ov_out.dtype == torch.float32
    _close(ov_out * 255, torch_out * 255)


def test_generate_matches_torch():
    ours, theirs = (artgan.generate(3, seed=4, backend=backend) for backend in
                    ("openvino", "torch"))
    for a, b in zip(ours, theirs, strict=True):
        _close(a, b)


def test_conversion_is_cached_and_a_corrupt_entry_is_converted_again(tiny, conversions):
    small, large = _picture(40, 36), _picture(120, 100)  # large: over 4 tiles' area, tiled

    def run():
        pipe = artgan.load("style-transfer", tiny, backend="openvino", tile=48, overlap=8)
        return np.asarray(pipe(small)), np.asarray(pipe(large))

    first = run()
    assert len(conversions) == 3  # the plain network, the one with statistics as inputs,
    entries = {p.name.split(".")[1]: p for p in backends.cache_dir().glob("*.xml")}
    assert sorted(entries) == ["image", "image+stats", "stats"]  # and the one measuring them
    assert all(p.with_suffix(".bin").is_file() for p in entries.values())
    assert not list(backends.cache_dir().glob(".*"))  # no temporaries left
    second = run()
    assert len(conversions) == 3  # read from the cache
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    entries["image"].write_text("<net>not a model")
    entries["image+stats"].with_suffix(".bin").write_bytes(b"")
    third = run()
    assert len(conversions) == 5
    assert all(np.array_equal(a, b) for a, b in zip(first, third, strict=True))
    run()
    assert len(conversions) == 5  # the entries were replaced


def test_a_new_weights_file_gets_its_own_entry(tiny, conversions, tmp_path):
    from artgan_style_transfer import cyclegan

    artgan.load("style-transfer", tiny, backend="openvino")(_picture(40, 36))
    torch.manual_seed(1)
    other = store.save_model(cyclegan(**TINY), tmp_path / "tiny.safetensors",
                             task="style-transfer", architecture="cyclegan", config=TINY)
    artgan.load("style-transfer", str(other), backend="openvino")(_picture(40, 36))
    assert len(conversions) == 2 and len(list(backends.cache_dir().glob("*.xml"))) == 2


def test_past_its_budget_the_cache_forgets_the_least_recently_used(tiny, conversions,
                                                                    tmp_path, monkeypatch):
    from artgan_style_transfer import cyclegan

    def model(seed: int) -> str:
        torch.manual_seed(seed)
        return str(store.save_model(cyclegan(**TINY), tmp_path / f"m{seed}.safetensors",
                                    task="style-transfer", architecture="cyclegan",
                                    config=TINY))

    def stylize(path: str) -> None:
        artgan.load("style-transfer", path, backend="openvino")(_picture(40, 36))

    first, second = model(1), model(2)
    stylize(first)
    stylize(second)
    entries = sorted(backends.cache_dir().glob("*.xml"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 2
    entry = entries[0].with_suffix(".bin").stat().st_size + entries[0].stat().st_size
    for age, path in enumerate(entries):  # clear ages: the first model used first
        for file in (path, path.with_suffix(".bin")):
            os.utime(file, (1000 + age, 1000 + age))
    stylize(first)  # read from the cache: now the most recently used
    assert len(conversions) == 2
    monkeypatch.setattr(backends, "CACHE_BUDGET", int(1.5 * entry))
    third = model(3)
    stylize(third)  # a third conversion: the second model's entry goes, the first's stays
    left = {path.name.split(".")[0] for path in backends.cache_dir().glob("*.xml")}
    assert len(conversions) == 3
    assert left == {backends.weights_key(path, "a2b") for path in (first, third)}
    assert not [p for p in backends.cache_dir().glob("*.bin") if not p.with_suffix(".xml").exists()]


def test_auto_on_a_gpu_is_torch_without_importing_openvino(monkeypatch):
    monkeypatch.setattr(infer, "pick_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(backends, "openvino", None)  # called, it would raise
    assert backends.choose("auto", "cuda") == ("torch", "cuda")


def test_auto_is_openvino_on_the_cpu_and_torch_without_it(monkeypatch):
    assert backends.choose("auto", "cpu") == ("openvino", "cpu")
    assert backends.choose("openvino", "auto") == ("openvino", "cpu")
    assert backends.choose("torch", "cpu") == ("torch", "cpu")
    monkeypatch.setattr(infer, "pick_device", lambda name: torch.device("cpu"))
    assert backends.choose("auto", "auto") == ("openvino", "cpu")  # no GPU here
    monkeypatch.setitem(sys.modules, "openvino", None)  # not installed
    assert backends.choose("auto", "cpu") == ("torch", "cpu")
    with pytest.raises(ArtganError, match="unknown backend 'tensorrt'"):
        backends.choose("tensorrt", "cpu")


def test_openvino_on_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(infer, "pick_device", lambda name: torch.device("cuda"))
    with pytest.raises(ArtganError, match="runs on the CPU, not cuda: use --device cpu"):
        backends.choose("openvino", "cuda")


def test_openvino_on_the_cpu_is_chosen_without_asking_torch(monkeypatch):
    monkeypatch.setattr(infer, "pick_device", None)  # called, it would raise
    assert backends.choose("openvino", "auto") == ("openvino", "cpu")
    assert backends.choose("auto", "cpu") == ("openvino", "cpu")


@pytest.mark.parametrize("command", [
    ["run", "style-transfer", "--backend", "openvino", "PICTURE", "-o", "OUT.png"],
    ["generate", "-n", "1", "--backend", "openvino", "-o", "OUT.png"],
])
def test_openvino_without_the_extra_is_one_line(cli, monkeypatch, tmp_path, command):
    picture = tmp_path / "photo.png"
    _picture(40, 36).save(picture)
    args = [str(picture) if a == "PICTURE" else str(tmp_path / a) if a == "OUT.png" else a
            for a in command]
    monkeypatch.setitem(sys.modules, "openvino", None)
    done = cli(*args)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        'error: the openvino backend needs the openvino extra: pip install "artgan[openvino]"']
    assert not (tmp_path / "OUT.png").exists()


def test_torch_backend_is_unchanged(cli, monkeypatch, tmp_path, conversions):
    picture = tmp_path / "photo.png"
    _picture(60, 44).save(picture)
    done = cli("run", "style-transfer", "--backend", "torch", str(picture),
               "-o", str(tmp_path / "torch.png"))
    assert done.returncode == 0, done.stderr
    monkeypatch.setitem(sys.modules, "openvino", None)  # auto falls back to today's path
    assert cli("run", "style-transfer", str(picture), "-o", str(tmp_path / "auto.png")
               ).returncode == 0
    assert not conversions
    torch_png, auto_png = (np.asarray(Image.open(tmp_path / f"{name}.png"))
                           for name in ("torch", "auto"))
    assert np.array_equal(torch_png, auto_png)


def _scratched(seed: int = 0) -> torch.Tensor:
    """A smooth (3, 160, 192) uint8 picture with a pale scratch and a dark blot."""
    y, x = torch.meshgrid(torch.arange(160), torch.arange(192), indexing="ij")
    picture = torch.stack([x * 255 // 191, y * 255 // 159, (x + y) * 255 // 350]).to(torch.uint8)
    picture[:, 40:42, 20:170] = 250
    picture[:, 100:112, 120:134] = 10
    return picture


def test_restore_networks_match_torch_and_are_cached(conversions):
    from artgan_restore.detector import damage_probability
    from artgan_restore.restorer import Restorer

    def compilations() -> set[Path]:
        return set((backends.cache_dir() / "compiled").glob("*.blob"))

    def compiled(restorer: Restorer) -> None:  # waited for (compilation runs in a thread)
        restorer.networks["detector"](torch.rand(1, 3, 64, 64))
        restorer.networks["inpainter"](torch.rand(1, 3, 64, 64), torch.ones(1, 1, 64, 64))

    picture = _scratched()
    ours = Restorer.load("general", "cpu", "torch")
    before = compilations()
    theirs = Restorer.load("general", "cpu", "openvino")
    assert all(isinstance(net, OpenVINONetwork) for net in theirs.networks.values())
    compiled(theirs)
    kept = compilations()
    compiled(Restorer.load("general", "cpu", "openvino"))
    assert len(conversions) == 2  # detector and inpainter; the second load read the cache
    assert len(kept - before) == 2 and compilations() == kept  # compiled once, then loaded
    probability = [damage_probability(restorer.networks["detector"], picture)
                   for restorer in (ours, theirs)]
    assert probability[0].max() > 0.5  # the scratch is seen, so the comparison means something
    assert (probability[0] - probability[1]).abs().max() < 0.01
    mask = torch.zeros(160, 192, dtype=torch.bool)
    mask[38:44, 18:172] = True  # the scratch
    for rows, cols in ((160, 192), (100, 116)):  # windows of the model's size; smaller
        part, hole = picture[:, :rows, :cols], mask[:rows, :cols]
        fixed = [restorer.inpaint(part, hole).int() for restorer in (ours, theirs)]
        assert (fixed[0] != part).any() and (fixed[0] - fixed[1]).abs().max() <= 3


def test_detect_only_converts_the_detector_alone(conversions, monkeypatch, tmp_path):
    """``--detect-only`` never runs the inpainter, so OpenVINO neither converts nor compiles
    it (a first run's conversion takes seconds); a later restore in the same process gets
    an OpenVINO inpainter all the same."""
    from artgan_restore.task import RestoreTask

    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path / "home"))  # an empty cache
    task = RestoreTask()
    looking = task.restorer("general", "cpu", backend="openvino", detect_only=True)
    assert isinstance(looking.networks["detector"], OpenVINONetwork)
    assert not isinstance(looking.networks["inpainter"], OpenVINONetwork)
    assert len(conversions) == 1
    assert looking.find(_scratched()).marks.any()
    restoring = task.restorer("general", "cpu", backend="openvino")
    assert all(isinstance(net, OpenVINONetwork) for net in restoring.networks.values())
    assert len(conversions) == 2  # the inpainter; the detector's conversion is cached


def test_restore_cli_takes_the_backend(cli, tmp_path):
    source = tmp_path / "scan.png"
    Image.fromarray(_scratched().permute(1, 2, 0).numpy()).save(source)
    mask = np.zeros((160, 192), np.uint8)
    mask[38:44, 18:172] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "fixed.png"
    result = cli("restore", str(source), "--mask", str(tmp_path / "mask.png"), "--backend",
                 "openvino", "--out", str(out))
    assert result.returncode == 0, result.stderr
    fixed, before = np.asarray(Image.open(out)), np.asarray(Image.open(source))
    assert (fixed[mask == 0] == before[mask == 0]).all() and (fixed != before).any()


def test_openvino_measures_the_statistics_torch_does():
    """A tiled picture's instance-norm statistics come from OpenVINO too (torch's pass over
    the shrunk copy was half of a run's time): within bf16 rounding of torch fp32's."""
    pipe = artgan.load("style-transfer", "monet", backend="openvino")
    small = torch.rand(1, 3, 64, 96)
    ours = infer.instance_norm_stats(pipe.network, small)
    theirs = infer.instance_norm_stats(pipe.network, small, backend=pipe.backend)
    assert len(ours) == len(theirs)
    for (mean, rstd), (ov_mean, ov_rstd) in zip(ours, theirs, strict=True):
        assert ov_mean.shape == mean.shape and ov_rstd.shape == rstd.shape
        assert torch.allclose(ov_mean, mean, rtol=0.05, atol=0.02)
        assert torch.allclose(ov_rstd, rstd, rtol=0.05, atol=0.02)


@pytest.mark.parametrize("size", [(60, 44), (64, 48), (61, 45)])
def test_a_picture_run_whole_gets_the_pixels_of_translate(tiny, size):
    """The numpy path a PIL picture takes (``OpenVINOStyle.paint``: no torch) pads, divides and
    rounds as ``artgan.infer.translate``'s one pass does, padded or not."""
    from artgan.convert import pil_to_uint8

    pipe = artgan.load("style-transfer", tiny, backend="openvino")
    picture = _picture(*size)
    with torch.inference_mode():
        translated = pipe.process(pil_to_uint8(picture).unsqueeze(0))[0]
    assert np.array_equal(np.array(pipe(picture)), translated.permute(1, 2, 0).numpy())


def test_a_cached_style_run_never_imports_torch(tiny, tmp_path):
    """Issue 21: once a style's conversion is cached, ``artgan run style-transfer --backend
    openvino`` on a picture it runs whole needs only numpy and OpenVINO (torch's import was
    most of such a run's time), and gives the pixels of the run that converted it."""
    picture = tmp_path / "photo.png"
    _picture(60, 44).save(picture)
    outs = [tmp_path / "first.png", tmp_path / "second.png"]
    runs = [imports_of(["run", "style-transfer", "--style", tiny, "--backend", "openvino",
                        str(picture), "-o", str(out)]) for out in outs]
    assert runs[0] == (0, {"torch"})  # the conversion traces the torch network
    assert runs[1] == (0, set())
    assert np.array_equal(np.array(Image.open(outs[0])), np.array(Image.open(outs[1])))


def test_an_isa_limit_below_bf16_runs_openvino_in_f32(tiny, tmp_path, monkeypatch):
    """``ONEDNN_MAX_CPU_ISA=AVX2`` (what a CPU without AVX-512 has, or a user's setting) keeps
    OpenVINO from compiling for bf16: artgan must ask it for f32 (it used to fail with
    "object is not initialized" on CPUs that have bf16)."""
    monkeypatch.undo()  # the fixture's own ARTGAN_HOME is kept below; bf16 as the CPU says
    monkeypatch.setenv("ARTGAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu.has_native_bf16() and backends.inference_precision() == "f32"
    picture = tmp_path / "photo.png"
    _picture(60, 44).save(picture)
    done = subprocess.run([sys.executable, "-m", "artgan", "run", "style-transfer", "--style",
                           tiny, "--backend", "openvino", str(picture), "-o",
                           str(tmp_path / "out.png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "out.png").size == (60, 44)
