"""Repaint a photo with an exported style model: onnxruntime, numpy and Pillow only, no torch.

Export the model once (this needs artgan with its onnx extra, ``pip install "artgan[onnx]"``):

    artgan export style-transfer monet --out onnx/

which writes ``onnx/monet.a2b.onnx`` (photo -> painting) and ``onnx/monet.b2a.onnx``
(painting -> photo). Then, anywhere onnxruntime, numpy and Pillow are installed:

    python examples/onnx_stylize.py onnx/monet.a2b.onnx PHOTO [OUT]

OUT defaults to ``painted.png``. Everything the script needs to feed the network comes
from the file's ``artgan.*`` metadata: the input and output value range (pictures in
[0, 1], N x 3 x H x W RGB float32), and the size multiple the picture is padded to
(reflected at the bottom and right, then cropped off again). The whole picture runs in
one pass, as artgan does up to its tile size (1024 px): for much larger pictures use
artgan's own tiled pipeline, or ``--max-size``-like shrinking first.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


def metadata(session: ort.InferenceSession) -> dict:
    """The ``artgan.*`` entries of the model's metadata, JSON values decoded."""
    out = {}
    for key, value in session.get_modelmeta().custom_metadata_map.items():
        if key.startswith("artgan."):
            try:
                out[key[len("artgan."):]] = json.loads(value)
            except json.JSONDecodeError:
                out[key[len("artgan."):]] = value
    return out


def to_range(x: np.ndarray, source: list, target: list) -> np.ndarray:
    """Map values linearly from the ``source`` range to the ``target`` one."""
    (a, b), (c, d) = source, target
    return (x - a) / (b - a) * (d - c) + c


def stylize(model: str, photo: str, out: str = "painted.png") -> None:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = metadata(session)
    multiple, least = int(meta.get("size_multiple", 4)), int(meta.get("min_size", 16))
    picture = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255
    height, width = picture.shape[:2]
    if min(height, width) < least:
        sys.exit(f"picture too small ({width}x{height}): needs {least} px on each side")
    x = to_range(picture.transpose(2, 0, 1)[None], [0, 1], meta["input_range"])
    pad = ((0, 0), (0, 0), (0, -height % multiple), (0, -width % multiple))
    x = np.pad(x, pad, mode="reflect").astype(np.float32)
    name = session.get_inputs()[0].name
    y = session.run(None, {name: x})[0][0, :, :height, :width]
    y = np.clip(to_range(y, meta["output_range"], [0, 1]), 0, 1)
    Image.fromarray(np.round(y.transpose(1, 2, 0) * 255).astype(np.uint8)).save(out)
    print(f"{meta.get('model')} {meta.get('network')} ({meta.get('direction')}): "
          f"{photo} -> {out}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    stylize(*sys.argv[1:4])
