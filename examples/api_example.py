"""The artgan Python API in a creative-coding script.

Run from the repository root after ``pip install .``:

    python examples/api_example.py [PHOTO [OUT_DIR]]

PHOTO defaults to ``examples/photos/chelsea.jpg`` (beside this script) and OUT_DIR to
``out/``. It lists what is installed, stylizes the photo as a PIL image (``OUT_DIR/monet.png``),
runs the same pipeline on a numpy array and a torch tensor to show that each comes back as it
went in, and turns the painting back into a photo (``OUT_DIR/round_trip.png``).
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import artgan

PHOTO = Path(__file__).resolve().parent / "photos" / "chelsea.jpg"


def main(photo: str, out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print("tasks:", ", ".join(artgan.tasks()))
    for model in artgan.models():
        print(f"model: {model.task}/{model.name} ({model.source})")

    image = Image.open(photo).convert("RGB")
    image.thumbnail((512, 512))

    monet = artgan.load("style-transfer", "monet")       # load once, call many times
    monet(image).save(out / "monet.png")                  # PIL in, PIL out

    array = np.array(image)                               # H x W x 3 uint8 (a copy)
    print("numpy:", monet(array).shape, monet(array).dtype)

    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255   # 3 x H x W in [0, 1]
    print("torch:", tuple(monet(tensor).shape))

    back = artgan.load("style-transfer", "monet", reverse=True)      # Monet -> photo
    back(Image.open(out / "monet.png")).save(out / "round_trip.png")
    print(f"wrote {out / 'monet.png'} and {out / 'round_trip.png'}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) > 2 or any(arg.startswith("-") for arg in args):
        sys.exit(__doc__)
    main(args[0] if args else str(PHOTO), args[1] if len(args) > 1 else "out")
