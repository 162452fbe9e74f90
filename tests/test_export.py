"""ONNX export: each shipped network, run by onnxruntime at another size than it was
exported at, gives artgan's own fp32 torch output; unexportable networks fail clearly."""

import sys

import numpy as np
import pytest
import torch
from torch import nn

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from export_reference import close, style_reference  # noqa: E402

from artgan import ArtganError, export, store  # noqa: E402


def run(path, **inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export each task's shipped model once (small example size: fast)."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}

    def get(task, model, size=64):
        if (task, model) not in files:
            paths = export.export(task, model, folder / task, size=size)
            files[task, model] = {p.name.split(".")[-2]: p for p in paths}
        return files[task, model]

    return get


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_style_generators_match_the_pipeline_at_another_size(exported, direction):
    path = exported("style-transfer", "monet")[direction]
    meta = export.read_metadata(path)
    assert meta["network"] == direction and meta["model"] == "monet"
    assert meta["input_range"] == [0, 1] and meta["size_multiple"] == 4
    batch, ours = style_reference(direction)
    theirs = np.clip(run(path, image=batch), 0, 1)
    assert theirs.shape == (2, 3, 96, 80)
    close(ours, theirs)


def test_style_export_has_no_scatter(exported):
    import onnx

    path = exported("style-transfer", "monet")["a2b"]
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "ScatterND" not in ops and "InstanceNormalization" in ops


def test_generator_matches_the_pipeline(exported):
    from artgan_generate.sampling import GeneratorPipeline, latents

    path = exported("generate", "monet")["generator"]
    network = store.load_model("monet", "generate").network
    pipe = GeneratorPipeline(network, torch.device("cpu"))
    z = latents(3, seed=5, dim=pipe.latent_dim)
    meta = export.read_metadata(path)
    assert meta["latent_dim"] == pipe.latent_dim and meta["fixed_size"] == pipe.size
    close(pipe.process(z), run(path, z=z))


def test_detector_matches_at_another_size(exported):
    path = exported("restore", "general")["detector"]
    detector = store.load_model("general", "restore").network["detector"]
    torch.manual_seed(1)
    image = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        ours = detector(image)
    theirs = run(path, image=image)
    assert theirs.shape == tuple(ours.shape)
    close(torch.sigmoid(ours), torch.sigmoid(torch.from_numpy(theirs)))
    assert np.abs(ours.numpy() - theirs).max() < 1e-2


def test_inpainter_matches_with_another_batch(exported):
    path = exported("restore", "general")["inpainter"]
    assert export.read_metadata(path)["fixed_size"] == 64
    inpainter = store.load_model("general", "restore").network["inpainter"]
    torch.manual_seed(2)
    image = torch.rand(3, 3, 64, 64)
    mask = (torch.rand(3, 1, 64, 64) > 0.9).float()
    mask[0, :, 10:40, 5:30] = 1
    mask[2] = 0  # nothing to repaint: a shallower pyramid in eager
    with torch.inference_mode():
        ours = inpainter(image, mask)
    close(ours, run(path, image=image, mask=mask))


class DataDependent(nn.Module):
    def forward(self, image):
        if image.mean() > 0.5:  # control flow on the data: no graph can hold it
            return image * 2
        return image


def test_an_unexportable_network_is_one_clear_error(tmp_path):
    network = export.ExportNetwork("odd", DataDependent(), {"image": torch.rand(2, 3, 8, 8)},
                                   "output", {"image": {0: torch.export.Dim.DYNAMIC}})
    with pytest.raises(ArtganError, match=r"odd network.*test_export\.py:\d+.*image\.mean"):
        export.to_onnx(network, tmp_path / "odd.onnx", {"model": "test"})


def test_cli_without_the_onnx_extra_says_what_to_install(cli, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    result = cli("export", "style-transfer", "monet", "--out", str(tmp_path))
    assert result.returncode != 0
    assert 'export needs the onnx extra: pip install "artgan[onnx]"' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_file_as_out(cli, tmp_path):
    target = tmp_path / "file.onnx"
    target.write_bytes(b"")
    result = cli("export", "style-transfer", "monet", "--out", str(target))
    assert result.returncode != 0
