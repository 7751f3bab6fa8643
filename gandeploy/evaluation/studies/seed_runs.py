"""The runner the seed tables share (``gandeploy mode-table``, ``gandeploy quality-table``): train a shipped recipe
(plus overrides) on one seed into its own run dir, reuse a kept run only when everything that decides it hashes
the same, run many such jobs one or ``jobs`` processes at a time, and summarise seeds as mean ± sample std.

A job is ``fn(*args)`` returning a result dict (a failure is a result with ``error``, so one bad run does not
cost the rest of a long table); ``run_jobs`` hands each result to ``finished`` as it arrives.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from signal import SIGTERM
from typing import Any

import numpy as np
import torch

from gandeploy.utils.logging import get_logger

log = get_logger("evaluation.seed_runs")

DONE_FILE = "mode_table_run.json"  # written into a run dir when its training finished: a rerun only rescores it


def run_key(model: str, dataset: str, arch: dict[str, Any], train: dict[str, Any]) -> str:
    """A hash of everything that decides a run (model, data set, architecture, the recipe's training settings
    with the row's overrides and the seed): a kept run is reused only when this matches."""
    text = json.dumps({"model": model, "dataset": dataset, "arch": arch, "train": train}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def train_recipe(recipe_path: Path, overrides: dict[str, Any], seed: int, run_dir: Path, *,
                 dataset: str | None = None, signal: Callable[..., Any] | None = None) -> tuple[float, str]:
    """Train the recipe at ``recipe_path`` with ``overrides`` (TrainConfig fields) and ``seed`` into ``run_dir``
    (on ``dataset``, default the recipe's); (training seconds, data set). A run dir whose training finished with the same settings (``DONE_FILE``) is
    kept and its recorded time returned; one trained with other settings is trained again."""
    from gandeploy.registry import get_model
    from gandeploy.training.api import task_class, train_run
    from gandeploy.training.recipes import load_recipe, make_train_config
    from gandeploy.utils.io import atomic_write_json

    recipe = load_recipe(recipe_path)
    model = recipe.model or "mlp"
    dataset = dataset or str(recipe.dataset)
    settings = {**recipe.train, **overrides, "seed": seed}
    key = run_key(model, dataset, dict(recipe.arch), settings)
    done = run_dir / DONE_FILE
    kept = json.loads(done.read_text()) if done.is_file() else {}
    if kept.get("key") == key:
        return float(kept["seconds"]), dataset
    if kept:
        log.info("%s: its recipe or overrides changed since it was kept; training it again", run_dir)
    train = make_train_config(settings, str(recipe_path), task_class(get_model(model)).Options)
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    train_run(model, dataset, train, run_dir, arch=dict(recipe.arch), signal=signal)
    seconds = time.perf_counter() - start
    atomic_write_json(done, {"seed": seed, "seconds": seconds, "key": key, "recipe": str(recipe_path)})
    return seconds, dataset


def sample_std(values: np.ndarray) -> float:
    """The sample standard deviation (ddof 1); 0.0 for a single seed."""
    return float(values.std(ddof=1)) if values.size > 1 else 0.0


def span(seeds: Sequence[int]) -> str:
    """``5-9`` for a consecutive run of seeds, else the list."""
    if seeds and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(str(s) for s in seeds)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_init(parent: int) -> None:
    """Worker initialiser: one intra-op thread per process, so ``jobs`` processes share the cores fairly; and
    the worker ends with its parent (killed or crashed), never training on as an orphan nobody reads."""
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def run_jobs(fn: Callable[..., dict[str, Any]], jobs_args: Sequence[tuple[Any, ...]], jobs: int,
             finished: Callable[[dict[str, Any], tuple[Any, ...]], None]) -> None:
    """``fn(*args)`` for every ``args`` in ``jobs_args``, ``jobs`` at a time (spawned processes of one thread
    each when > 1, in this process otherwise); ``finished(result, args)`` as each one ends. Ctrl-C or a crashed
    worker cancels the jobs not yet started."""
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    if jobs == 1:
        for args in jobs_args:
            finished(fn(*args), args)
        return
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_worker_init,
                             initargs=(os.getpid(),)) as pool:
        futures: dict[Future, tuple[Any, ...]] = {pool.submit(fn, *args): args for args in jobs_args}
        try:
            for future in as_completed(futures):
                finished(future.result(), futures[future])
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
