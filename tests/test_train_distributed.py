"""Two CPU processes under torchrun train the same model as one process with the full batch.

Run by pytest, this file launches itself under ``torch.distributed.run`` as the worker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from artgan.losses import LOSSES
from artgan.nn import ARCHITECTURES
from artgan.train import GanModule, TrainConfig, Trainer
from artgan.train.distributed import from_env

NZ, SIZE, BATCH, STEPS = 4, 8, 8, 6


def generator() -> nn.Module:
    return nn.Sequential(
        nn.Linear(NZ, 3 * SIZE * SIZE), nn.Tanh(), nn.Unflatten(1, (3, SIZE, SIZE))
    )


class NoiseInBatchGan(GanModule):
    """Noise comes with the data, so a split batch sees exactly the noise of the whole one."""

    def networks(self):
        disc = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                             nn.Linear(4 * 16, 1))
        return {"generator": generator(), "discriminator": disc}

    def optimizers(self, networks):
        return {"gen": torch.optim.Adam(networks["generator"].parameters(), 1e-2),
                "disc": torch.optim.Adam(networks["discriminator"].parameters(), 1e-2)}

    def training_step(self, batch, step):
        real, z = batch
        gen, disc = step.networks["generator"], step.networks["discriminator"]
        loss = LOSSES.get("nonsaturating")
        fake = gen(z)
        step.backward(loss.d_loss(disc(real), disc(fake.detach())), "disc")
        g_loss = loss.g_loss(disc(fake))
        step.backward(g_loss, "gen")
        return {"g": g_loss}

    def export(self, networks):
        return networks["generator"], "test-dist-generator", {}


def shard(start: int):
    """Global batch i is a function of i; each process takes its interleaved share of rows."""
    world = from_env()
    index = start
    while True:
        generator = torch.Generator().manual_seed(index)
        real = torch.rand(BATCH, 3, SIZE, SIZE, generator=generator) * 2 - 1
        z = torch.randn(BATCH, NZ, generator=generator)
        yield real[world.rank :: world.size], z[world.rank :: world.size]
        index += 1


def train(run_dir: Path) -> Trainer:
    config = TrainConfig(run_dir=run_dir, steps=STEPS, precision="fp32", device="cpu",
                         log_every=2, checkpoint_every=3)
    trainer = Trainer(NoiseInBatchGan(), shard, config)
    trainer.fit()
    return trainer


def flat_weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{name}.{key}": value.contiguous()
            for name, net in trainer.networks.items() for key, value in net.state_dict().items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               __file__, str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [load_file(tmp_path / f"rank{r}.safetensors") for r in (0, 1)]
    for key, value in ranks[0].items():
        assert torch.equal(value, ranks[1][key]), key

    single = flat_weights(train(tmp_path / "single"))
    for key, value in single.items():
        torch.testing.assert_close(ranks[0][key], value, rtol=0, atol=1e-5, msg=key)

    run = tmp_path / "dist"
    assert len((run / "log.jsonl").read_text().splitlines()) == STEPS // 2
    assert json.loads((run / "log.jsonl").read_text().splitlines()[-1])["images"] == STEPS * BATCH
    assert (run / "checkpoints" / "latest.safetensors").exists()
    assert (tmp_path / "model.safetensors").exists()


if __name__ == "__main__":
    out = Path(sys.argv[1])
    ARCHITECTURES.register("test-dist-generator", generator, replace=True)
    trainer = train(out / "dist")
    trainer.export(out / "model.safetensors", task="generate")
    save_file(flat_weights(trainer), out / f"rank{trainer.world.rank}.safetensors")
