"""``GanModule``: what a task hands the shared Trainer.

A task describes its networks, optimizers and one training step; the Trainer owns
everything else (device, precision, EMA, schedules, checkpoints, logging, distribution),
so no task writes its own loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from artgan.losses import ANCHOR_BLUR, AnchorLoss

if TYPE_CHECKING:
    from artgan.train.step import StepContext


class GanModule:
    """Subclass and implement ``networks``, ``optimizers``, ``training_step``, ``export``.

    The Trainer calls ``networks()`` once, after seeding, so build (and initialise) the
    networks there, not in ``__init__``: that makes runs reproducible from ``seed``.
    ``ema`` names the networks to keep an exponential moving average of when the
    config sets ``ema_decay``; the averaged copies replace them in ``sample`` and ``export``.
    """

    ema: tuple[str, ...] = ()

    def networks(self) -> dict[str, nn.Module]:
        """Every network by name, e.g. ``{"generator": ..., "discriminator": ...}``."""
        raise NotImplementedError

    def optimizers(self, networks: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """Optimizers by name, built on ``networks`` (already on the training device)."""
        raise NotImplementedError

    def training_step(self, batch: Any, step: StepContext) -> dict[str, torch.Tensor | float]:
        """One iteration: the discriminator phase, then the generator phase.

        Run forward passes under ``step.autocast()``, augment what the discriminator sees
        with ``step.augment(x)``, feed real logits to ``step.update_augment(logits)`` for
        adaptive augmentation, and update with ``step.backward(loss, "optimizer name")``.
        Use ``step.networks`` (not your own references): they are the ones being trained.
        Freezing D with ``requires_grad_(False)`` during the G phase is allowed (and saves
        its backward), also under torchrun.
        Return the losses to log (tensors are detached and averaged by the Trainer).
        """
        raise NotImplementedError

    def fixed_inputs(self, batch: Any) -> Any:
        """What to sample from for progress grids, chosen once from the first batch.

        Tensors, or lists/tuples/dicts of them; stored in the checkpoint so a resumed run
        keeps drawing the same grid. The default is no samples.
        """
        return None

    def sample(self, networks: dict[str, nn.Module], fixed: Any) -> torch.Tensor:
        """Images in [-1, 1], shape (N, 3, H, W), from ``fixed``; runs in eval mode, no grad."""
        raise NotImplementedError

    def validate(self, networks: dict[str, nn.Module]) -> float | None:
        """A score of ``networks`` on held-out data, lower is better; None: no validation.

        Called before the first step and every ``validate_every`` steps (eval mode, no grad,
        no autocast, EMA copies swapped in, main process only: keep it short);
        the Trainer exports the best-scoring weights, since GAN quality swings from one
        point of a run to the next and the last step is rarely the best.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Training state that is not in the networks or optimizers (e.g. a history pool of
        past fakes), tensors or nested dicts/lists of them, saved in every checkpoint so a
        resumed run continues exactly. The default is none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what ``state_dict`` returned, on resume."""

    def shape_options(self) -> dict[str, Any]:
        """The options that fix the networks' shapes, by their CLI spelling and with the
        values this run uses, e.g. ``{"--width": 32}`` (numbers, strings or booleans).

        Saved in every checkpoint: resuming with other values then fails with one line
        naming them ("trained with --width 16, not 8") instead of torch's state-dict error.
        The default names none (a misfit is then reported by the first tensor that differs).
        """
        return {}

    def export(self, networks: dict[str, nn.Module]) -> tuple[nn.Module, str, dict[str, Any]]:
        """``(module to save, architecture name, config)`` for the model store.

        ``networks`` holds the EMA copies in place of the networks named in ``ema``.
        """
        raise NotImplementedError


class AnchoredModule(GanModule):
    """A ``GanModule`` whose generator can be held near the weights a fine-tune starts from
    (``--anchor-weight``, ``losses.AnchorLoss``). ``networks`` hands the new generator to
    ``hold``; the training step adds ``anchor_weight`` times ``anchored(...)`` to G's loss.
    The start goes into the checkpoints, so a resumed run is held to the start it began with.
    Subclasses set ``anchor_weight`` and ``anchor_blur`` in their ``__init__``."""

    anchor_weight: float = 0.0
    anchor_blur: float = ANCHOR_BLUR
    _anchor: AnchorLoss | None = None

    def hold(self, generator: nn.Module) -> None:
        """With ``anchor_weight``, keep ``generator`` as it is now as the anchor's start."""
        if self.anchor_weight:
            self._anchor = AnchorLoss(generator, self.anchor_blur)

    def anchored(self, generated: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor | None:
        """The anchor loss of what the generator made from ``inputs`` (None: no anchor)."""
        return None if self._anchor is None else self._anchor(generated, inputs)

    def state_dict(self) -> dict[str, Any]:
        return {"anchor": self._anchor.state_dict()} if self._anchor is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._anchor is not None and "anchor" in state:
            self._anchor.load_state_dict(state["anchor"])
