"""The collapse signal of the training-health monitor (``gandeploy/training/monitor.py``), per data set.

- mixtures (ring8, grid25, mix1d: data sets with known ``centres``): ``modes`` covered and ``hq`` share of
  high-quality samples among the task's fixed latents (the VEEGAN / PacGAN protocol, ``metrics/mixtures.py``);
- digits: ``class_entropy`` — the entropy (bits) of the held-out judge's class histogram over the task's fixed
  latent batch (log2 10 ≈ 3.32 when every digit is drawn equally; a collapsing generator drifts towards 0);
- anything else: no signal (the monitor still logs D's outputs and the gradient norms).

Built by the caller (the CLI, the API, the demo, the mode table) and handed to ``train_run`` as a callable: the
trainer knows only the ``Signal`` type, and the measures come from ``gandeploy.metrics``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gandeploy.config import RunConfig
from gandeploy.training.monitor import Signal


def collapse_signal(run: RunConfig, dataset: Any) -> Signal | None:
    """The signal for ``dataset`` (see the module docstring), or None when there is none to compute."""
    centres = getattr(dataset, "centres", None)
    if centres is not None and getattr(dataset, "std", None) is not None:
        from gandeploy.metrics.mixtures import mode_stats

        def modes(task: Any) -> dict[str, float]:
            points = task.generate(task.fixed)  # [N, D]
            stats = mode_stats(points, centres, float(dataset.std))
            return {"modes": float(stats.modes_covered), "hq": stats.high_quality}

        return modes
    if run.dataset == "digits" and hasattr(dataset, "channels"):
        from gandeploy.metrics.classifier import classify_digits

        def class_entropy(task: Any) -> dict[str, float]:
            pred, conf = classify_digits(task.generate(task.fixed))  # [N]
            hist = np.bincount(pred.numpy(), minlength=10) / float(len(pred))
            nz = hist[hist > 0]
            return {"class_entropy": float(-(nz * np.log2(nz)).sum()), "judge_confidence": float(conf.mean())}

        return class_entropy
    return None
