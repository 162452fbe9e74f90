"""OpenVINO export: each shipped network, read back from its IR and run by OpenVINO in fp32
at another size than it was exported at, gives artgan's own fp32 torch output."""

import numpy as np
import pytest
import torch

ov = pytest.importorskip("openvino")

from export_reference import close, style_reference  # noqa: E402

from artgan import ArtganError, export, store  # noqa: E402


def run(path, **inputs):
    """The IR at ``path`` compiled for the CPU in fp32, run on named inputs."""
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled({name: value.numpy() for name, value in inputs.items()})[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openvino")
    files = {}

    def get(task, model):
        if (task, model) not in files:
            paths = export.export(task, model, folder / task, "openvino", size=64)
            assert all(p.suffix == ".xml" and p.with_suffix(".bin").is_file() for p in paths)
            files[task, model] = {p.name.split(".")[-2]: p for p in paths}
        return files[task, model]

    return get


def test_style_generator_matches_the_pipeline_at_another_size(exported):
    path = exported("style-transfer", "monet")["a2b"]
    meta = export.read_metadata(path)
    assert meta["format"] == "artgan.openvino/1" and meta["network"] == "a2b"
    assert meta["input_range"] == [0, 1] and meta["size_multiple"] == 4
    batch, ours = style_reference("a2b")
    theirs = np.clip(run(path, image=batch), 0, 1)
    assert theirs.shape == (2, 3, 96, 80)
    close(ours, theirs)


def test_generator_matches_the_pipeline(exported):
    from artgan_generate.sampling import GeneratorPipeline, latents

    path = exported("generate", "monet")["generator"]
    pipe = GeneratorPipeline(store.load_model("monet", "generate").network,
                             torch.device("cpu"))
    z = latents(3, seed=5, dim=pipe.latent_dim)
    assert export.read_metadata(path)["latent_dim"] == pipe.latent_dim
    close(pipe.process(z), run(path, z=z))


def test_restore_networks_match(exported):
    files = exported("restore", "general")
    networks = store.load_model("general", "restore").network
    torch.manual_seed(1)
    image = torch.rand(2, 3, 96, 128)
    with torch.inference_mode():
        ours = networks["detector"](image)
    theirs = run(files["detector"], image=image)
    assert theirs.shape == tuple(ours.shape)
    assert np.abs(ours.numpy() - theirs).max() < 1e-2
    image = torch.rand(3, 3, 64, 64)
    mask = (torch.rand(3, 1, 64, 64) > 0.9).float()
    mask[0, :, 10:40, 5:30] = 1
    with torch.inference_mode():
        ours = networks["inpainter"](image, mask)
    close(ours, run(files["inpainter"], image=image, mask=mask))


def test_an_unconvertible_network_names_the_operator(tmp_path):
    class Odd(torch.nn.Module):
        def forward(self, image):
            return torch.special.i1e(image)  # no OpenVINO translation

    network = export.ExportNetwork("odd", Odd(), {"image": torch.rand(2, 3, 8, 8)}, "output",
                                   {"image": {0: torch.export.Dim.DYNAMIC}})
    with pytest.raises(ArtganError, match=r"odd network to OpenVINO: operator aten::"):
        export.to_openvino(network, tmp_path / "odd.xml", {"model": "test"})
    assert not list(tmp_path.iterdir())


def test_cli_exports_openvino(cli, tmp_path):
    result = cli("export", "generate", "monet", "--format", "openvino", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "monet.generator.xml").is_file()
    assert (tmp_path / "monet.generator.bin").is_file()
