"""What artgan's own fp32 torch networks give, for the export tests to compare a runtime's
output with (ONNX Runtime in test_export.py, OpenVINO in test_export_openvino.py)."""

import numpy as np
import torch

from artgan import store

MEAN, MAX = 0.5 / 255, 4 / 255  # allowed error on the [0, 1] scale


def style_reference(direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(a batch at a size other than the exported one, the monet pipeline's fp32 output)."""
    from artgan_style_transfer.task import StylePipeline

    network = store.load_model("monet", "style-transfer").network[direction]
    pipe = StylePipeline(network, torch.device("cpu"))
    pipe.dtype = None  # fp32, even where the CPU has bfloat16
    torch.manual_seed(0)
    batch = torch.rand(2, 3, 96, 80)
    with torch.inference_mode():
        return batch, pipe.process(batch.clone())


def close(ours, theirs) -> np.ndarray:
    diff = np.abs(np.asarray(ours, np.float64) - np.asarray(theirs, np.float64))
    assert diff.mean() <= MEAN and diff.max() <= MAX, (diff.mean(), diff.max())
    return diff
