"""``StepContext``: the Trainer's services inside one ``GanModule.training_step``.

It hides precision (autocast, fp16 loss scaling), the NaN/Inf guard, gradient averaging
across processes and augmentation, so a task's step reads like the textbook algorithm.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from artgan.augment import Augment
from artgan.errors import UnknownNameError
from artgan.train import distributed


class StepContext:
    """Passed to ``training_step``; ``index`` is the 0-based number of the current step."""

    def __init__(
        self,
        *,
        networks: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        device: torch.device,
        precision: str,
        augment: Augment | None,
        world: distributed.World,
    ):
        self.index = 0
        self.networks = networks
        self.optimizers = optimizers
        self.device = device
        self.precision = precision
        self.world = world
        self._augment = augment
        self._params = {
            name: [p for group in opt.param_groups for p in group["params"]]
            for name, opt in optimizers.items()
        }
        # One scaler per optimizer: each is stepped and updated on its own, so a task may
        # update an optimizer several times per step (e.g. several critic updates).
        self.scalers = {
            name: torch.amp.GradScaler(device.type) for name in optimizers
        } if precision == "fp16" else {}
        self.skipped: list[str] = []

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes in the run's precision (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """The run's differentiable augmentation (identity when there is none)."""
        return x if self._augment is None else self._augment(x)

    def update_augment(self, real_logits: torch.Tensor) -> None:
        """Feed D's logits on real images to adaptive augmentation (no-op without ADA)."""
        if self._augment is not None:
            self._augment.update(real_logits)

    def backward(
        self, loss: torch.Tensor, optimizer: str, *, retain_graph: bool = False
    ) -> bool:
        """Backprop ``loss`` and step ``optimizer``; return False if it was skipped.

        Gradients of the optimizer's parameters are cleared first (so what other phases
        left there does not leak in), averaged across processes, unscaled under fp16,
        and checked: a non-finite loss or gradient skips the update (fp16 overflow is left
        to the scaler and does not count as a bad step).
        """
        if optimizer not in self.optimizers:
            raise UnknownNameError("optimizer", optimizer, self.optimizers)
        opt = self.optimizers[optimizer]
        scaler = self.scalers.get(optimizer)
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler else loss).backward(retain_graph=retain_graph)
        grads = [p.grad for p in self._params[optimizer] if p.grad is not None]
        bad = (~torch.isfinite(loss.detach().float())).any().float()
        if self.world.size > 1:
            bad = distributed.average_grads(grads, bad, self.world.size)
        if scaler is not None:
            scaler.unscale_(opt)
            ok = bool(bad == 0)
        else:
            norm = torch.nn.utils.get_total_norm(grads) if grads else bad.new_zeros(())
            ok = bool((bad == 0) & torch.isfinite(norm))
        if ok:
            if scaler is not None:
                scaler.step(opt)
            else:
                opt.step()
        else:
            self.skipped.append(optimizer)
        if scaler is not None:
            scaler.update()
        opt.zero_grad(set_to_none=True)
        return ok
