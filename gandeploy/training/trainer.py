"""The generic trainer: one step loop for every GAN family (``GANTask``), with exact resume.

One training *step* is ``n_critic`` discriminator updates followed by one generator update (a family without a
discriminator update declares ``n_critic`` 0: its generator update then draws the step's one batch). Every random
draw is a pure function of (seed, counter), so a resumed run repeats an uninterrupted run bit for bit on CPU:

* batches: draw ``d`` (the d-th batch; ``draws_per_step`` per step) lies in epoch ``d // draws_per_epoch``; that epoch's
  order is ``randperm(len(dataset), step_generator(seed, epoch, STREAM_PERM))``; draw ``d`` takes the next
  ``batch_size * world_size`` indices of it and this rank keeps its shard (the last partial batch is dropped);
* noise: ``d_step`` of draw ``d`` gets ``step_generator(seed, d, STREAM_D + 16 * rank)``, ``g_step`` of step
  ``s`` gets ``step_generator(seed, s, STREAM_G + 16 * rank)``, augmentation ``STREAM_DATA`` (CPU generators).

Losses stay tensors on the device; ``losses.csv`` gets one row per step, converted in one batch (a single host
sync) every ``LOG_EVERY_CUDA`` steps on CUDA, every step on the CPU. On CUDA the next batches are prepared
ahead on a background thread in pinned memory (``prefetch.py``; the same batches, so resume stays exact);
``--compile`` wraps the forward modules in ``torch.compile`` (``GANTask.enable_compile``).

Files (rank 0 only): ``losses.csv`` (one row per step, written and flushed at each conversion; fsynced before
every checkpoint; rows after the checkpoint's step are dropped on resume), ``checkpoints/latest.pt`` every
``checkpoint_every`` steps, at every epoch end and at the end (``step_XXXXXX.pt`` copies every ``keep_every``
steps), ``samples/epoch_NNN.png`` at every epoch end, ``losses.png`` at the end.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gandeploy.errors import CheckpointError, Interrupted, TrainingError, UserInputError
from gandeploy.training import distributed
from gandeploy.training.checkpoint import (CKPT_DIR, LATEST, latest_checkpoint, load_checkpoint, load_state_into,
                                           save_checkpoint)
from gandeploy.training.distributed import DistContext
from gandeploy.training.losslog import LossLog, scalar
from gandeploy.training.monitor import HealthMonitor, Signal
from gandeploy.training.prefetch import Prefetcher
from gandeploy.training.schedule import Schedule, draws_per_step, make_schedule
from gandeploy.training.task import GANTask
from gandeploy.training.tensorboard import add_grid, open_writer
from gandeploy.utils.device import step_generator
from gandeploy.utils.logging import get_logger

log = get_logger("trainer")

STREAM_PERM, STREAM_DATA, STREAM_D, STREAM_G = 1, 2, 3, 4
RANK_STRIDE = 16  # stream offset per rank: ranks draw different noise, the same batch order
LOSSES_CSV, LOSSES_PNG, SAMPLES_DIR = "losses.csv", "losses.png", "samples"
LOG_EVERY_CUDA = 25  # steps between loss conversions (host syncs) on CUDA
PREFETCH_CUDA = 2  # batches prepared ahead on CUDA


class _Bar(tqdm):  # type: ignore[misc]
    """tqdm without its monitor thread: nothing of a finished run may still be running when the process exits."""

    monitor_interval = 0


class BatchSampler:
    """Deterministic batches: draw ``d`` → this rank's shard of the epoch permutation's next slice."""

    def __init__(self, dataset: Any, sched: Schedule, seed: int, ctx: DistContext) -> None:
        self.dataset, self.sched, self.seed, self.ctx = dataset, sched, seed, ctx
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.int64)

    def indices(self, draw: int) -> torch.Tensor:
        epoch, pos = divmod(draw, self.sched.draws_per_epoch)
        if epoch != self._epoch:
            gen = step_generator(self.seed, epoch, STREAM_PERM)
            self._epoch, self._perm = epoch, torch.randperm(self.sched.items, generator=gen)  # [items]
        gb = self.sched.global_batch
        return distributed.shard(self._perm[pos * gb:(pos + 1) * gb], self.ctx)  # [batch_size]

    def batch(self, draw: int) -> Any:
        gen = step_generator(self.seed, draw, STREAM_DATA + RANK_STRIDE * self.ctx.rank)
        return self.dataset.get_batch(self.indices(draw), gen)


class Trainer:
    """Runs a ``GANTask`` to ``train.steps`` / ``train.epochs`` in ``run_dir``, resuming from ``latest.pt``."""

    def __init__(self, task: GANTask, run_dir: str | os.PathLike[str], *, ctx: DistContext | None = None,
                 resume: bool = False, signal: Signal | None = None) -> None:
        self.task, self.run_dir, self.resume = task, Path(run_dir), resume
        self.ctx = ctx or DistContext()
        self.train = task.train
        self.sched = make_schedule(len(task.dataset), self.train.batch_size, self.ctx.world_size,
                                   task.n_critic, self.train.epochs, self.train.steps)
        self.sampler = BatchSampler(task.dataset, self.sched, self.train.seed, self.ctx)
        cuda = task.device.type == "cuda"
        self.losses = LossLog(self.run_dir / LOSSES_CSV, tuple(task.loss_names),
                              every=LOG_EVERY_CUDA if cuda else 1)
        self._stop_requested = False
        self.monitor = HealthMonitor(self.run_dir, self.train.monitor_every, self.train.loss, signal,
                                     self.train.stop_on_collapse)
        self.stop_reason: str | None = None  # "interrupted" | "collapse" when the run ended early
        if self.ctx.enabled:
            self._enable_ddp()
        if self.train.compile:
            task.enable_compile()
        self._prefetch = PREFETCH_CUDA if cuda else 0

    def check_length(self) -> None:
        """On resume: a schedule shorter than what ``latest.pt`` already holds is a ``UserInputError``."""
        done = int(load_checkpoint(latest_checkpoint(self.run_dir)).get("step", 0))
        if done > self.sched.total_steps:
            epochs = done / self.sched.steps_per_epoch
            raise UserInputError(f"--resume: '{self.run_dir}' already holds {done} steps ({epochs:g} epochs), more "
                                 f"than the {self.sched.total_steps} that --epochs/--steps now give; pass a larger "
                                 "--epochs or --steps (config.json is unchanged).")

    # ------------------------------------------------------------------ the loop
    def fit(self) -> Path:
        """Train to the end of the schedule; returns the run dir."""
        task, sched, seed = self.task, self.sched, self.train.seed
        start = self._restore() if self.resume else 0
        main = self.ctx.is_main
        if main:
            self.losses.open(keep_until=start)
            self.monitor.open(keep_until=start)
        if start >= sched.total_steps:
            log.info("run in %s already has %d of %d steps; nothing to train", self.run_dir, start,
                     sched.total_steps)
        else:
            log.info("training %d steps (%d per epoch, batch %d, n_critic %d) from step %d on %s",
                     sched.total_steps, sched.steps_per_epoch, sched.global_batch, sched.n_critic, start,
                     task.device)
        rank_off = RANK_STRIDE * self.ctx.rank
        last_saved, t0, interrupted = start, time.perf_counter(), None
        bar = _Bar(total=sched.total_steps, initial=start, disable=not main, unit="step", dynamic_ncols=True,
                   desc=self.run_dir.name, mininterval=0.5)
        self.losses.on_flush = lambda last: bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()}, refresh=False)
        batches = Prefetcher(self.sampler.batch, self._prefetch,
                             last=sched.total_steps * draws_per_step(sched.n_critic) - 1)
        old_handler = self._install_sigint()
        board = open_writer(self.run_dir) if main else None  # None unless TensorBoard is installed
        if board is not None:  # the losses of every step, as LossLog converts them (no extra host sync)
            self.losses.on_rows = lambda rows: [board.add_scalar(f"loss/{k}", v, step) for step, losses in rows
                                                for k, v in losses.items() if v is not None]
        try:
            for step in range(start, sched.total_steps):
                check = self.monitor.due(step)
                task.track_grads = check
                losses = self._one_step(step, seed, rank_off, batches)
                done, epoch = step + 1, sched.epoch_of_step(step)
                if main:
                    self.losses.append(done, epoch + 1, losses)
                    if check:
                        self.losses.flush()
                self._fail_on_nonfinite(last_saved)
                if check and main:
                    raised, collapse = self.monitor.record(task, done, epoch + 1, self.losses.last)
                    if raised:
                        bar.set_description(f"{self.run_dir.name} [{', '.join(sorted(self.monitor.active))}]")
                    if collapse:
                        self.stop_reason, self._stop_requested = "collapse", True
                bar.update(1)
                epoch_end = done % sched.steps_per_epoch == 0 or done == sched.total_steps
                if epoch_end:
                    task.on_epoch_end(epoch)
                    if main:
                        grid = task.save_samples(self.run_dir / SAMPLES_DIR / f"epoch_{epoch + 1:03d}.png", done)
                        if board is not None:
                            add_grid(board, grid, done)
                keep = self.train.keep_every > 0 and done % self.train.keep_every == 0
                if epoch_end or keep or done % self.train.checkpoint_every == 0 or self._stop_requested:
                    if self._checkpoint(done, keep):
                        last_saved = done
                    self._fail_on_nonfinite(last_saved)
                if self._stop_requested:
                    self.stop_reason = self.stop_reason or "interrupted"
                    if self.stop_reason == "interrupted":
                        interrupted = done
                    else:
                        log.warning("stopped after step %d (%s); checkpoint saved.", done, self.stop_reason)
                    break
        finally:  # in order: the prefetch thread, the files, the bar, TensorBoard's writer thread, Ctrl-C
            batches.close()
            self.losses.close()
            bar.close()
            if board is not None:
                board.close()
            self._restore_sigint(old_handler)
        trained = max(last_saved - start, 0)
        if trained:
            dt = time.perf_counter() - t0
            log.info("trained %d steps in %.1f s (%.3f s/step)", trained, dt, dt / trained)
        if main and (self.run_dir / LOSSES_CSV).is_file():
            from gandeploy.training.plots import plot_losses

            plot_losses(self.run_dir / LOSSES_CSV, self.run_dir / LOSSES_PNG)
            self.monitor.plot()
        if self.ctx.enabled:
            models = [distributed.unwrap(m) for m in self.task.models.values()]
            if distributed.params_in_sync(models, self.ctx):
                log.info("DDP: parameters identical on all %d ranks", self.ctx.world_size)
            else:
                log.warning("DDP: parameters differ between ranks; only rank 0's were saved")
        distributed.barrier(self.ctx)
        if self.stop_reason == "collapse":
            raise TrainingError(f"stopped after step {last_saved} of {sched.total_steps}: the collapse signal dropped "
                                f"(--stop-on-collapse; see {self.run_dir / 'monitor.csv'}); the checkpoint is saved. "
                                "Try --pack, --loss wgan-gp or a lower --lr-d, or --resume without "
                                "--stop-on-collapse.")
        if interrupted is not None:  # a half-trained run must not look finished to 'train && export'
            raise Interrupted(f"training interrupted after step {interrupted} of {sched.total_steps}; checkpoint "
                              f"saved in {self.run_dir / CKPT_DIR / LATEST}. Continue it with the same command "
                              "and --resume.")
        return self.run_dir

    def _one_step(self, step: int, seed: int, rank_off: int, batches: Prefetcher) -> dict[str, Any]:
        """``n_critic`` discriminator updates (losses averaged), then one generator update on the last batch (its
        own batch when ``n_critic`` is 0); losses stay tensors (float64 sums: the same figures as Python floats)
        until ``LossLog`` converts them."""
        task, n = self.task, self.sched.n_critic
        per_step = draws_per_step(n)
        sums: dict[str, Any] = {}
        batch = batches.get(step * per_step) if n == 0 else None
        for k in range(n):
            draw = step * per_step + k
            batch = batches.get(draw)
            for name, value in task.d_step(batch, step_generator(seed, draw, STREAM_D + rank_off)).items():
                sums[name] = sums[name] + scalar(value) if name in sums else scalar(value)
        losses = {name: value / n for name, value in sums.items()}
        losses.update(task.g_step(batch, step_generator(seed, step, STREAM_G + rank_off)))
        task.after_g_step()
        return losses

    def run_steps(self, first: int, count: int) -> dict[str, float]:
        """``count`` steps from ``first`` and no files (benchmarks time this); the last step's losses as floats
        (their conversion waits for the device, so the call's wall time covers the steps' compute)."""
        batches = Prefetcher(self.sampler.batch, self._prefetch)
        try:
            losses: dict[str, Any] = {}
            for step in range(first, first + count):
                losses = self._one_step(step, self.train.seed, RANK_STRIDE * self.ctx.rank, batches)
            return {k: float(v) for k, v in losses.items()}
        finally:
            batches.close()

    # ------------------------------------------------------------------ checkpoints
    def state(self, step: int) -> dict[str, Any]:
        """The full training state after ``step`` generator updates."""
        return {
            "step": step,
            "epoch": step // self.sched.steps_per_epoch,
            "seed": self.train.seed,
            "loss_names": list(self.task.loss_names),
            "models": {k: distributed.unwrap(m).state_dict() for k, m in self.task.models.items()},
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "scalers": {k: s.state_dict() for k, s in self.task.scalers.items()},
            "extra": self.task.extra_state(),
        }

    def _fail_on_nonfinite(self, last_saved: int) -> None:
        """NaN/inf losses: stop without checkpointing the broken state (the last good checkpoint stays)."""
        bad = self.losses.first_nonfinite
        if bad is None:
            return
        kept = (f"the last good checkpoint (step {last_saved}) is kept in {self.run_dir / CKPT_DIR / LATEST}"
                if last_saved else "no checkpoint had been written yet")
        raise TrainingError(f"the losses became NaN or infinite at step {bad}; training stopped and {kept}. "
                            "Lower --lr (or --lr-d / --lr-g), try --loss wgan-gp or hinge, or turn off --amp; "
                            "then train again (--resume continues the checkpoint).")

    def _checkpoint(self, step: int, keep: bool) -> bool:
        """Write ``latest.pt`` (rank 0); False when the state is not saved (another rank, or NaN/inf losses)."""
        if not self.ctx.is_main:
            return True
        self.losses.sync()  # rows up to `step` are on disk before the checkpoint that covers them
        if self.losses.first_nonfinite is not None:
            return False  # never checkpoint a state whose losses went NaN/inf (the loop stops right after)
        ckpt_dir = self.run_dir / CKPT_DIR
        state = self.state(step)
        save_checkpoint(ckpt_dir / LATEST, state)
        if keep:
            save_checkpoint(ckpt_dir / f"step_{step:06d}.pt", state)
        log.debug("checkpoint at step %d", step)
        return True

    def _restore(self) -> int:
        """Load ``latest.pt`` into the task; returns the step to continue from (0 when there is none)."""
        path = self.run_dir / CKPT_DIR / LATEST
        if not path.is_file():
            log.warning("--resume: no checkpoint in %s yet; starting from step 0", self.run_dir)
            return 0
        state = load_checkpoint(latest_checkpoint(self.run_dir), map_location=self.task.device)
        models, optims = state.get("models", {}), state.get("optimizers", {})
        for key, module in self.task.models.items():
            if key not in models and key in self.task.optional_models:
                log.warning("%s has no '%s' yet; it starts from the current weights", path, key)
                continue
            if key not in models:
                raise CheckpointError(f"{path} has no model '{key}'; it was not written by this kind of run.")
            load_state_into(distributed.unwrap(module), models[key], f"model '{key}' in {path}")
        for key, opt in self.task.optimizers.items():
            try:
                opt.load_state_dict(optims[key])
            except (KeyError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"optimizer '{key}' in {path} does not fit this run ({exc}); was --loss "
                                      "changed? Resume with the original settings or pass another --out.") from None
        for key, scaler in self.task.scalers.items():
            if key in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][key])
        self.task.load_extra_state(state.get("extra", {}))
        step = int(state["step"])
        log.info("resumed %s at step %d (epoch %d)", self.run_dir, step, step // self.sched.steps_per_epoch)
        return step

    # ------------------------------------------------------------------ DDP and Ctrl-C
    def _enable_ddp(self) -> None:
        self.task.enable_ddp(self.ctx)

    def _install_sigint(self) -> Any:
        """Single process: the first Ctrl-C stops after the current step with a checkpoint; the second aborts."""
        if self.ctx.enabled or threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            log.warning("Ctrl-C: finishing this step and saving a checkpoint (press again to abort)")

        return signal.signal(signal.SIGINT, handler)

    @staticmethod
    def _restore_sigint(old: Any) -> None:
        if old is not None:
            signal.signal(signal.SIGINT, old)
