"""Multi-process training under ``torchrun``: process group, gradient and state averaging.

Gradients are averaged explicitly inside ``StepContext.backward`` rather than by wrapping
networks in ``DistributedDataParallel``: a GAN step runs several forward/backward passes
through shared networks (D sees both phases, G's loss backprops through D), which DDP's
one-forward-one-backward bookkeeping handles poorly (errors on unused parameters, wasted
reductions of D's gradients in the G phase). Averaging exactly the gradients an optimizer
is about to apply gives the same update as DDP with none of those traps.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from artgan.errors import ArtganError


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size``; ``size == 1`` when alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that logs, checkpoints and exports."""
        return self.rank == 0


def from_env() -> World:
    """Read RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (a single process otherwise)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: torch.device) -> World:
    """Join the process group once (gloo on CPU, nccl on CUDA); safe to call again."""
    world = from_env()
    if world.size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        try:
            dist.init_process_group(backend, rank=world.rank, world_size=world.size)
        except (RuntimeError, ValueError) as exc:
            raise ArtganError(f"could not join the {world.size}-process group: {exc}") from None
        atexit.register(shutdown)
    return world


def average_grads(grads: list[torch.Tensor], flag: torch.Tensor, size: int) -> torch.Tensor:
    """Average ``grads`` in place across processes; return ``flag`` summed over them.

    Everything travels in one flat float32 buffer, so one collective per backward.
    """
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [flag.reshape(1).float()])
    dist.all_reduce(flat)
    offset = 0
    for grad in grads:
        count = grad.numel()
        grad.copy_(flat[offset : offset + count].view_as(grad)).div_(size)
        offset += count
    return flat[-1]


def broadcast_state(modules: Iterable[nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every process (start and resume)."""
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, 0)


def average_buffers(module: nn.Module) -> None:
    """Average floating buffers across processes, e.g. batch-norm statistics or ADA counters."""
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if not buffers:
        return
    flat = torch.cat([b.reshape(-1).float() for b in buffers])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for buffer in buffers:
        buffer.copy_(flat[offset : offset + buffer.numel()].view_as(buffer))
        offset += buffer.numel()


def agree(flag: bool, device: torch.device) -> bool:
    """Rank 0's ``flag`` on every process, so all of them stop at the same step."""
    if not dist.is_initialized():
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.broadcast(value, 0)
    return bool(value)


def barrier() -> None:
    """Wait for every process (no-op when alone)."""
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()
