"""How far tiled style transfer is from one pass over the whole picture.

Run from the repository root after ``pip install .``:

    python examples/tiling_check.py examples/photos/*.jpg --size 768 --tile 256 512

Each picture is resized so that its longer side is ``--size`` px, stylized in one pass and
at each ``--tile``, and the script prints the mean and largest difference per channel
value between the two (in 1/255 steps), then the mean over all the pictures.
"""

import argparse

import numpy as np
from PIL import Image

import artgan


def resized(path: str, size: int) -> Image.Image:
    """``path`` as RGB with its longer side ``size`` px."""
    picture = Image.open(path).convert("RGB")
    scale = size / max(picture.size)
    shape = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(shape, Image.Resampling.LANCZOS)


def difference(a: Image.Image, b: Image.Image) -> tuple[float, int]:
    """Mean and largest absolute difference of two pictures' channel values (0..255)."""
    gap = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
    return float(gap.mean()), int(gap.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pictures", nargs="+")
    parser.add_argument("--size", type=int, default=768, help="longer side, px")
    parser.add_argument("--tile", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--style", default="monet")
    args = parser.parse_args()

    whole = artgan.load("style-transfer", args.style, tile=max(1024, -(-args.size // 4) * 4))
    tiled = {tile: artgan.load("style-transfer", args.style, tile=tile, overlap=args.overlap)
             for tile in args.tile}
    means: dict[int, list[float]] = {tile: [] for tile in args.tile}
    for path in args.pictures:
        picture = resized(path, args.size)
        reference = whole(picture)
        for tile, pipeline in tiled.items():
            mean, largest = difference(reference, pipeline(picture))
            means[tile].append(mean)
            print(f"{path} ({picture.width}x{picture.height}) --tile {tile}: "
                  f"mean {mean:.2f}/255, max {largest}/255")
    for tile, values in means.items():
        print(f"--tile {tile} --overlap {args.overlap}: mean over {len(values)} pictures "
              f"{sum(values) / len(values):.2f}/255")


if __name__ == "__main__":
    main()
