"""End to end: a tiny DCGAN trained through the real Trainer learns synthetic images."""

from __future__ import annotations

import math

import torch
from torch import nn

from artgan.losses import LOSSES
from artgan.metrics import swd
from artgan.train import GanModule, TrainConfig, Trainer

NZ = 32
PALETTE = torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.3, 0.9], [0.95, 0.85, 0.1]])


def blobs(count: int, seed: int, size: int = 32) -> torch.Tensor:
    """Dark images with one coloured disc each, in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.arange(size).float()
    centre = torch.rand(count, 2, generator=generator) * (size - 16) + 8
    radius = torch.rand(count, 1, 1, generator=generator) * 4 + 5
    distance = ((grid[None, :, None] - centre[:, 0, None, None]) ** 2
                + (grid[None, None, :] - centre[:, 1, None, None]) ** 2).sqrt()
    disc = (distance < radius).float()[:, None]
    colour = PALETTE[torch.randint(len(PALETTE), (count,), generator=generator)][..., None, None]
    background = torch.full((count, 3, 1, 1), 0.1)
    return (disc * colour + (1 - disc) * background) * 2 - 1


class TinyDCGAN(GanModule):
    ema = ("generator",)

    def networks(self):
        generator = nn.Sequential(
            nn.Linear(NZ, 64 * 4 * 4), nn.Unflatten(1, (64, 4, 4)), nn.BatchNorm2d(64), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, 2, 1), nn.Tanh(),
        )
        discriminator = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 1),
        )
        return {"generator": generator, "discriminator": discriminator}

    def optimizers(self, networks):
        return {name: torch.optim.Adam(networks[net].parameters(), 1e-3, betas=(0.5, 0.99))
                for name, net in (("gen", "generator"), ("disc", "discriminator"))}

    def training_step(self, batch, step):
        generator, discriminator = step.networks["generator"], step.networks["discriminator"]
        loss = LOSSES.get("nonsaturating")
        z = torch.randn(batch.shape[0], NZ, device=step.device)
        with step.autocast():
            fake = generator(z)
            d_loss = loss.d_loss(discriminator(batch), discriminator(fake.detach()))
        step.backward(d_loss, "disc")
        with step.autocast():
            g_loss = loss.g_loss(discriminator(fake))
        step.backward(g_loss, "gen")
        return {"d": d_loss, "g": g_loss}

    def fixed_inputs(self, batch):
        return torch.randn(16, NZ, device=batch.device)

    def sample(self, networks, fixed):
        return networks["generator"](fixed)

    def export(self, networks):
        raise NotImplementedError


def batches(data: torch.Tensor, size: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield data[torch.randint(len(data), (size,), generator=generator)]


def test_tiny_dcgan_learns_blobs(tmp_path):
    # One thread: these layers are too small to gain from two, and a second thread only
    # spins (and slows everything) when the machine is shared.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _learn_blobs(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _learn_blobs(tmp_path):
    data = blobs(512, seed=1)
    reference = (blobs(128, seed=2) + 1) / 2
    config = TrainConfig(run_dir=tmp_path, steps=300, ema_decay=0.99, precision="fp32",
                         log_every=50, sample_every=300, checkpoint_every=300)
    trainer = Trainer(TinyDCGAN(), batches(data, 32, seed=3), config)

    def distance() -> float:
        generator = trainer.inference_networks()["generator"].eval()
        with torch.no_grad():
            fake = generator(torch.randn(128, NZ, generator=torch.Generator().manual_seed(4)))
        return swd(reference, (fake + 1) / 2, projections=128, patches_per_image=64)["swd"]

    before = distance()
    result = trainer.fit()
    after = distance()
    print(f"SWD {before:.1f} -> {after:.1f} in {result.seconds:.1f} s")
    assert math.isfinite(after) and after <= before / 2
