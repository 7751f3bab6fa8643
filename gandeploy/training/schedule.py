"""The run's clock: how many draws and generator steps make an epoch, and the learning-rate decay over epochs."""

from __future__ import annotations

from dataclasses import dataclass

from gandeploy.errors import DataError


@dataclass(frozen=True)
class Schedule:
    """How many items, draws and steps make an epoch and the run."""

    items: int
    global_batch: int  # batch_size * world_size
    draws_per_epoch: int
    n_critic: int  # discriminator updates per step; 0: none (the generator update draws the step's batch)
    steps_per_epoch: int
    total_steps: int

    def epoch_of_step(self, step: int) -> int:
        """Epoch (from 0) that generator step ``step`` (from 0) belongs to."""
        return step // self.steps_per_epoch


def draws_per_step(n_critic: int) -> int:
    """Batches one step draws: one per discriminator update, or one for the generator alone when the family
    has no discriminator update (``n_critic`` 0, e.g. SRResNet's pixel-loss training)."""
    return max(1, n_critic)


def make_schedule(items: int, batch_size: int, world_size: int, n_critic: int, epochs: int,
                  steps: int | None) -> Schedule:
    """Epoch = one pass over the data in batches (``draws_per_step`` per step); ``steps`` (if set) overrides
    ``epochs``."""
    global_batch = batch_size * world_size
    if items < global_batch:
        per_rank = f" x {world_size} processes" if world_size > 1 else ""
        raise DataError(f"--batch-size {batch_size}{per_rank} is larger than the data set ({items} items); "
                        "pass a smaller --batch-size.")
    draws = items // global_batch
    spe = max(1, draws // draws_per_step(n_critic))
    total = steps if steps is not None else epochs * spe
    return Schedule(items, global_batch, draws, n_critic, spe, total)


def lr_factor(epochs_done: int, constant: int, decay: int) -> float:
    """1 for ``constant`` epochs, then linearly towards 0 over ``decay`` epochs (CycleGAN's ``lambda_rule``)."""
    if decay <= 0:
        return 1.0
    return max(0.0, 1.0 - max(0, epochs_done + 1 - constant) / float(decay + 1))
