"""Quality of the generate task: FastGAN against a plain DCGAN on the same wall-clock budget.

Both train in this run, one after the other, on the same pictures and machine, each for
``--minutes`` (the Trainer's time budget). Then, for each:

  SWD        sliced Wasserstein distance (artgan.metrics.swd, x1e3, mean over the Laplacian
             pyramid levels) between ``--samples`` generated pictures and all training
             pictures; lower is better. "train half" compares two halves of the training set,
             a floor that no generator of this many pictures can beat by much.
  artefacts  periodic-artefact score (artgan.metrics.periodic_artefacts: the share of fine
             detail in narrow spectral peaks, the mesh or grid that upsampling prints) of
             the samples; on the "train half" row, of all the training pictures. "/ train"
             is the ratio to the training pictures'; about 1 is clean.
  lattice    the same an octave lower (artgan.metrics.periodic_lattice: periods of 8 to 16
             px, a coarser grid of dashes), at 128 px and above; "/ train" likewise.
  min dist   mode-collapse check: the smallest pairwise distance among 64 samples, against
             the smallest among 64 training pictures (RMS pixel difference in [0, 1] of the
             pictures area-downsampled to 64 px). "ok" when samples' >= half of training's.
  CPU img/s  sampling throughput on the CPU in fp32 at the model's resolution (batches of 16).

DCGAN (Radford et al. 2015) is the paper's recipe: transposed convolutions with batch norm,
the non-saturating loss, Adam 2e-4/0.5, N(0, 0.02) initialisation, no augmentation, no EMA.

With artgan installed (or PYTHONPATH=.:plugins from the repository root):

    python benchmarks/quality_generate.py --data ../shared/data/monet --minutes 10 --size 64
    python benchmarks/quality_generate.py --data ../shared/data/monet --model monet.safetensors

``--update-card`` (with ``--model``) writes the results into that model's card.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from artgan_generate.sampling import CHUNK, GeneratorPipeline, latents
from artgan_generate.training import train_generator
from torch import Tensor, nn

from artgan.data import ImageFolder, make_loader
from artgan.losses import LOSSES
from artgan.metrics import LATTICE_TILE, load_image_set, periodic_artefacts, periodic_lattice, swd
from artgan.store import find_model, load_model, update_card
from artgan.train import GanModule, StepContext, TrainConfig, Trainer
from artgan.train.hardware import pick_device

COLLAPSE_SET = 64
COLLAPSE_SIZE = 64


class DCGAN(GanModule):
    """Radford et al.'s DCGAN for ``size`` px: 4x4 -> size by stride-2 transposed convs."""

    def __init__(self, size: int, width: int = 64, latent_dim: int = 100, lr: float = 2e-4):
        self.size, self.width, self.latent_dim, self.lr = size, width, latent_dim, lr
        self.loss = LOSSES.get("nonsaturating")

    def _channels(self, res: int) -> int:
        return self.width * min(8, self.size // (2 * res))

    def networks(self) -> dict[str, nn.Module]:
        ups = [2**i for i in range(2, int(math.log2(self.size)))]  # 4 ... size/2
        g: list[nn.Module] = [nn.ConvTranspose2d(self.latent_dim, self._channels(4), 4, 1, 0,
                                                 bias=False)]
        for res in ups:
            g += [nn.BatchNorm2d(self._channels(res)), nn.ReLU(True)]
            out = self._channels(2 * res) if 2 * res < self.size else 3
            g.append(nn.ConvTranspose2d(self._channels(res), out, 4, 2, 1, bias=False))
        g.append(nn.Tanh())
        d: list[nn.Module] = []
        c_in = 3
        for res in reversed(ups):  # size/2 ... 4
            d.append(nn.Conv2d(c_in, self._channels(res), 4, 2, 1, bias=False))
            if c_in != 3:
                d.append(nn.BatchNorm2d(self._channels(res)))
            d.append(nn.LeakyReLU(0.2, True))
            c_in = self._channels(res)
        d += [nn.Conv2d(c_in, 1, 4, 1, 0, bias=False), nn.Flatten(0)]
        networks = {"generator": nn.Sequential(*g), "discriminator": nn.Sequential(*d)}
        for net in networks.values():
            for module in net.modules():
                if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                    nn.init.normal_(module.weight, 0.0, 0.02)
                elif isinstance(module, nn.BatchNorm2d):
                    nn.init.normal_(module.weight, 1.0, 0.02)
                    nn.init.zeros_(module.bias)
        return networks

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {name: torch.optim.Adam(net.parameters(), self.lr, betas=(0.5, 0.999))
                for name, net in networks.items()}

    def training_step(self, batch: Tensor, step: StepContext) -> dict[str, Tensor]:
        g, d = step.networks["generator"], step.networks["discriminator"]
        z = torch.randn(batch.shape[0], self.latent_dim, 1, 1, device=batch.device)
        with step.autocast():
            fake = g(z)
            d_loss = self.loss.d_loss(d(batch), d(fake.detach()))
        step.backward(d_loss, "discriminator")
        with step.autocast():
            g_loss = self.loss.g_loss(d(fake))
        step.backward(g_loss, "generator")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @torch.no_grad()
    def generate(self, generator: nn.Module, count: int, device: torch.device) -> Tensor:
        """Samples in [0, 1], drawn in train mode (batch statistics) as DCGAN samples are."""
        generator.train()
        source = torch.Generator().manual_seed(0)
        out = []
        for start in range(0, count, 100):
            z = torch.randn(min(100, count - start), self.latent_dim, 1, 1, generator=source)
            out.append(generator(z.to(device)).float().cpu())
        return (torch.cat(out) + 1) / 2


def _config(run_dir: Path, args: argparse.Namespace, **extra) -> TrainConfig:
    return TrainConfig(run_dir=run_dir, minutes=args.minutes, device=args.device,
                       precision=args.precision, checkpoint_every=10**9, sample_every=10**9,
                       log_every=100, seed=0, **extra)


def train_fastgan(args: argparse.Namespace, work: Path) -> Path:
    config = _config(work / "fastgan", args, ema_decay=0.999, augment="color,translation")
    return train_generator(args.data, work / "fastgan.safetensors", config, size=args.size,
                           width=args.width, batch_size=args.batch_size)


def train_dcgan(args: argparse.Namespace, work: Path) -> tuple[DCGAN, Trainer]:
    module = DCGAN(args.size)
    dataset = ImageFolder(args.data, args.size)
    loader = make_loader(dataset, args.batch_size, seed=0)
    trainer = Trainer(module, loader, _config(work / "dcgan", args))
    trainer.fit()
    return module, trainer


def min_pairwise_distance(images: Tensor) -> float:
    """Smallest RMS difference between two of ``images`` ([0, 1]) at 64 px."""
    small = F.interpolate(images.float(), size=(COLLAPSE_SIZE, COLLAPSE_SIZE), mode="area")
    flat = small.flatten(1)
    distances = torch.cdist(flat.double(), flat.double()) / math.sqrt(flat.shape[1])
    distances.fill_diagonal_(float("inf"))
    return float(distances.min())


def cpu_throughput(pipeline: GeneratorPipeline, count: int = 64) -> float:
    pipeline.process(latents(CHUNK, 1, pipeline.latent_dim))  # warm-up
    start = time.perf_counter()
    pipeline.process(latents(count, 2, pipeline.latent_dim))
    return count / (time.perf_counter() - start)


def _lattice(images: Tensor) -> float | None:
    """``periodic_lattice`` where the pictures are large enough for its tiles."""
    return periodic_lattice(images) if min(images.shape[-2:]) >= LATTICE_TILE else None


def _scores(value: float | None, real: float | None) -> list[str]:
    """A score and its ratio to the training pictures', or dashes where there is none."""
    if value is None or real is None:
        return ["-", "-"]
    return [f"{value:.4f}", f"{value / real:.2f}"]


def _row(name: str, real: Tensor, fake: Tensor, reference: float,
         real_scores: tuple[float, float | None], steps: str, seconds: str,
         rate: str) -> list[str]:
    score = swd(real, fake)
    sample_min = min_pairwise_distance(fake[:COLLAPSE_SET])
    verdict = "ok" if sample_min >= reference / 2 else "COLLAPSE"
    return [name, steps, seconds, f"{score['swd']:.1f}",
            *_scores(periodic_artefacts(fake), real_scores[0]),
            *_scores(_lattice(fake), real_scores[1]), f"{sample_min:.4f}", verdict, rate]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Folder of training pictures.")
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="Training budget of each model (0 with --model: no baseline).")
    parser.add_argument("--size", type=int, default=64, choices=(32, 64, 128, 256))
    parser.add_argument("--model", help="Evaluate this generate model instead of training one.")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--width", type=int, default=16, help="FastGAN width.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads for training, sampling and the throughput figure")
    parser.add_argument("--update-card", action="store_true",
                        help="store the results in the --model file's card")
    args = parser.parse_args()
    if args.update_card and not args.model:
        parser.error("--update-card needs --model")
    torch.set_num_threads(args.threads)

    work = Path(tempfile.mkdtemp(prefix="quality-generate-"))
    if args.model:
        args.size = load_model(args.model, "generate").config["size"]
    real = load_image_set(args.data, args.size)
    reference = min_pairwise_distance(real[torch.randperm(len(real),
                                          generator=torch.Generator().manual_seed(0))[:64]])
    real_scores = (periodic_artefacts(real), _lattice(real))
    rows = []

    # A name or a path: --update-card rewrites the file the name resolves to.
    model_path = (find_model(args.model, "generate").path if args.model
                  else train_fastgan(args, work))
    device = pick_device(args.device)
    loaded = load_model(model_path, "generate")
    card = loaded.info.card
    fake = GeneratorPipeline(loaded.network, device).process(
        latents(args.samples, 0, loaded.network.latent_dim))
    rate = cpu_throughput(GeneratorPipeline(loaded.network, torch.device("cpu")))
    rows.append(_row("fastgan", real, fake, reference, real_scores, str(card.get("steps", "?")),
                     str(card.get("train_seconds", "?")), f"{rate:.1f}"))

    if args.minutes > 0:
        module, trainer = train_dcgan(args, work)
        generator = trainer.networks["generator"]
        fake = module.generate(generator, args.samples, trainer.device)
        start = time.perf_counter()
        module.generate(generator.cpu(), 64, torch.device("cpu"))
        rows.append(_row("dcgan", real, fake, reference, real_scores, str(trainer.step),
                         f"{trainer.elapsed():.1f}", f"{64 / (time.perf_counter() - start):.1f}"))

    half = len(real) // 2
    score = swd(real[:half], real[half:])
    rows.append(["train half", "-", "-", f"{score['swd']:.1f}",
                 *_scores(real_scores[0], real_scores[0]),
                 *_scores(real_scores[1], real_scores[1]), f"{reference:.4f}", "-", "-"])

    header = ["model", "steps", "train s", "SWD", "artefacts", "/ train", "lattice",
              "lattice / train", "min dist (64)", "collapse", "CPU img/s"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{args.size} px, {len(real)} training pictures from {args.data}, "
          f"{args.samples} samples; min dist of 64 training pictures: {reference:.4f}")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    if args.update_card:
        table = {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}
        quality = {"benchmark": f"quality_generate.py, {args.samples} samples vs "
                                f"{len(real)} training pictures at {args.size} px",
                   "min_dist_training_64": round(reference, 4), **table}
        print(f"card updated: {update_card(model_path, {'quality': quality})}")


if __name__ == "__main__":
    main()
