"""The artgan Python API in a creative-coding script.

Run from the repository root after ``pip install .``:

    python examples/api_example.py examples/photos/chelsea.jpg out/

It lists what is installed, stylizes one photo as a PIL image, then runs the same
pipeline on a numpy array and a torch tensor to show that each comes back as it went in.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import artgan


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
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
