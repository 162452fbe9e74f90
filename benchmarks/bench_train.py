"""Cost of the shared Trainer on a CycleGAN-sized step, against a plain PyTorch loop (CPU).

Each variant runs in its own subprocess (so peak RSS is its own) with 2 threads:
  eager     the obvious hand-written CycleGAN loop
  trainer   the same networks and losses through artgan's Trainer, fp32
  bf16      the Trainer with bf16 autocast
  augment   the Trainer, fp32, with DiffAugment (color,translation,cutout) on D's inputs
Networks are local copies of the CycleGAN ResNet generator (6 blocks) and the 70x70
PatchGAN, batch 1. images/s skips the first (warm-up) step.

    python benchmarks/bench_train.py --size 256 --steps 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("eager", "trainer", "bf16", "augment")
LAMBDA_CYCLE, LAMBDA_IDENTITY = 10.0, 5.0


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(blocks: int = 6, width: int = 64) -> nn.Module:
    """c7s1-64, d128, d256, R256 x blocks, u128, u64, c7s1-3 (Zhu et al. 2017)."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), nn.InstanceNorm2d(width),
              nn.ReLU(True)]
    for scale in (1, 2):
        layers += [nn.Conv2d(width * scale, width * scale * 2, 3, 2, 1),
                   nn.InstanceNorm2d(width * scale * 2), nn.ReLU(True)]
    layers += [ResidualBlock(width * 4) for _ in range(blocks)]
    for scale in (4, 2):
        layers += [nn.ConvTranspose2d(width * scale, width * scale // 2, 3, 2, 1, output_padding=1),
                   nn.InstanceNorm2d(width * scale // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(width: int = 64) -> nn.Module:
    """70x70 PatchGAN: C64-C128-C256-C512, then a 1-channel map."""
    layers = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for i, stride in ((1, 2), (2, 2), (4, 1)):
        layers += [nn.Conv2d(width * i, width * i * 2, 4, stride, 1),
                   nn.InstanceNorm2d(width * i * 2), nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(width * 8, 1, 4, 1, 1))
    return nn.Sequential(*layers)


def networks() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"gen_ab": resnet_generator(), "gen_ba": resnet_generator(),
            "disc_a": patch_discriminator(), "disc_b": patch_discriminator()}


def optimizers(nets: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
    gens = [*nets["gen_ab"].parameters(), *nets["gen_ba"].parameters()]
    discs = [*nets["disc_a"].parameters(), *nets["disc_b"].parameters()]
    return {"gen": torch.optim.Adam(gens, 2e-4, betas=(0.5, 0.999)),
            "disc": torch.optim.Adam(discs, 2e-4, betas=(0.5, 0.999))}


def lsgan(logits: torch.Tensor, target: float) -> torch.Tensor:
    return (logits.float() - target).square().mean()


def dataset(size: int, count: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random images: domain B is domain A's colours shifted, so the task is learnable."""
    generator = torch.Generator().manual_seed(1)
    low = torch.rand(count, 3, 8, 8, generator=generator) * 2 - 1
    a = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    b = (a.roll(1, dims=1) * 0.8 + 0.1).clamp(-1, 1)
    return a, b


def batch(data: tuple[torch.Tensor, torch.Tensor], index: int) -> tuple[torch.Tensor, ...]:
    a, b = data
    return a[index % len(a)][None], b[(index * 3 + 1) % len(b)][None]


def run_eager(size: int, steps: int) -> tuple[list[float], list[float]]:
    """The obvious loop, as in the CycleGAN reference: G step with D frozen, then D step."""
    nets = networks()
    opts = optimizers(nets)
    data = dataset(size)
    times, losses = [], []
    for index in range(steps):
        times.append(time.perf_counter())
        a, b = batch(data, index)
        for name in ("disc_a", "disc_b"):
            nets[name].requires_grad_(False)
        fake_b, fake_a = nets["gen_ab"](a), nets["gen_ba"](b)
        g_loss = (lsgan(nets["disc_b"](fake_b), 1) + lsgan(nets["disc_a"](fake_a), 1)
                  + LAMBDA_CYCLE * (F.l1_loss(nets["gen_ba"](fake_b), a)
                                    + F.l1_loss(nets["gen_ab"](fake_a), b))
                  + LAMBDA_IDENTITY * (F.l1_loss(nets["gen_ab"](b), b)
                                       + F.l1_loss(nets["gen_ba"](a), a)))
        opts["gen"].zero_grad()
        g_loss.backward()
        opts["gen"].step()
        for name in ("disc_a", "disc_b"):
            nets[name].requires_grad_(True)
        d_loss = 0.5 * (lsgan(nets["disc_a"](a), 1) + lsgan(nets["disc_a"](fake_a.detach()), 0)
                        + lsgan(nets["disc_b"](b), 1) + lsgan(nets["disc_b"](fake_b.detach()), 0))
        opts["disc"].zero_grad()
        d_loss.backward()
        opts["disc"].step()
        losses.append(float(g_loss.detach()))
    times.append(time.perf_counter())
    return times, losses


def run_trainer(size: int, steps: int, precision: str, augment: str | None):
    """The same step as a GanModule through the Trainer."""
    from artgan.train import GanModule, TrainConfig, Trainer

    times, losses = [], []

    class CycleGan(GanModule):
        def networks(self):
            return networks()

        def optimizers(self, nets):
            return optimizers(nets)

        def training_step(self, pair, step):
            times.append(time.perf_counter())
            a, b = pair
            nets = step.networks
            for name in ("disc_a", "disc_b"):
                nets[name].requires_grad_(False)
            with step.autocast():
                fake_b, fake_a = nets["gen_ab"](a), nets["gen_ba"](b)
                g_loss = (lsgan(nets["disc_b"](step.augment(fake_b)), 1)
                          + lsgan(nets["disc_a"](step.augment(fake_a)), 1)
                          + LAMBDA_CYCLE * (F.l1_loss(nets["gen_ba"](fake_b).float(), a)
                                            + F.l1_loss(nets["gen_ab"](fake_a).float(), b))
                          + LAMBDA_IDENTITY * (F.l1_loss(nets["gen_ab"](b).float(), b)
                                               + F.l1_loss(nets["gen_ba"](a).float(), a)))
            step.backward(g_loss, "gen")
            for name in ("disc_a", "disc_b"):
                nets[name].requires_grad_(True)
            with step.autocast():
                d_loss = 0.5 * (
                    lsgan(nets["disc_a"](step.augment(a)), 1)
                    + lsgan(nets["disc_a"](step.augment(fake_a.detach())), 0)
                    + lsgan(nets["disc_b"](step.augment(b)), 1)
                    + lsgan(nets["disc_b"](step.augment(fake_b.detach())), 0))
            step.backward(d_loss, "disc")
            losses.append(float(g_loss.detach()))
            return {"g": g_loss, "d": d_loss}

    data = dataset(size)

    def pairs(start: int):
        index = start
        while True:
            yield batch(data, index)
            index += 1

    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(run_dir=Path(run_dir), steps=steps, precision=precision,
                             device="cpu", augment=augment, log_every=10**9,
                             checkpoint_every=10**9, sample_every=10**9)
        trainer = Trainer(CycleGan(), pairs, config)
        started = time.perf_counter()
        trainer.fit()
        total = time.perf_counter() - started
    times.append(started + total)  # the end of fit, final checkpoint included
    return times, losses


def child(variant: str, size: int, steps: int) -> dict:
    torch.set_num_threads(2)
    if variant == "eager":
        times, losses = run_eager(size, steps)
    else:
        precision = "bf16" if variant == "bf16" else "fp32"
        augment = "color,translation,cutout" if variant == "augment" else None
        times, losses = run_trainer(size, steps, precision, augment)
    # Steady state: from the start of step 1 to the start of the last step, then that step.
    steady = times[-2] - times[1] if steps > 2 else times[-1] - times[0]
    per_step = steady / max(steps - 2, 1)
    third = max(len(losses) // 3, 1)
    return {
        "variant": variant,
        "images_s": 1 / per_step,
        "first_step_s": times[1] - times[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss_start": sum(losses[:third]) / third,
        "loss_end": sum(losses[-third:]) / third,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=20, help="steps per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.size, args.steps)))
        return
    rows = []
    for variant in args.variants.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--size", str(args.size),
             "--steps", str(args.steps)], capture_output=True, text=True, check=True,
        )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = rows[0]["images_s"]
    print(f"CycleGAN step (2 x ResNet-6 G, 2 x 70x70 PatchGAN), batch 1, {args.size} px, "
          f"{args.steps} steps, 2 threads, torch {torch.__version__}")
    print(f"{'variant':<10}{'images/s':>10}{'vs eager':>10}{'peak RSS MB':>13}"
          f"{'G loss start':>14}{'G loss end':>12}  falls")
    for row in rows:
        print(f"{row['variant']:<10}{row['images_s']:>10.3f}{row['images_s'] / base:>10.2f}"
              f"{row['peak_rss_mb']:>13.0f}{row['loss_start']:>14.3f}{row['loss_end']:>12.3f}"
              f"  {'yes' if row['loss_end'] < row['loss_start'] else 'no'}")


if __name__ == "__main__":
    main()
