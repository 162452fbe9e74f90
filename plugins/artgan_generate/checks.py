"""The checks of what a user asks the generate task for (counts, seeds, truncation): shared
by the CLI and ``GeneratorPipeline``, and free of torch, which the CLI imports only to run."""

from __future__ import annotations

import numbers

from artgan import ArtganError

SEED_LIMIT = 2**63  # as training's (artgan.train.config, not imported: it loads the trainer)


def check_count(count: int, what: str = "-n") -> None:
    if count < 1:
        raise ArtganError(f"{what} must be at least 1, got {count}")


def check_seed(seed: int) -> None:
    """Seeds torch would refuse (over 64 bits) or alias (negative ones: -1 is 2**64 - 1)
    are one clear error, not an overflow from inside torch."""
    if not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise ArtganError(f"--seed must be a whole number from 0 to {SEED_LIMIT - 1}, "
                          f"got {seed!r}")


def check_truncation(truncation: float) -> None:
    if not 0 < truncation <= 1:
        raise ArtganError(f"--truncation must be in (0, 1], got {truncation}")
