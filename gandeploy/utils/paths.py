"""Where gandeploy's default folders are: one rule, one module.

Every default that depends on the working directory is a path under the **workspace**: ``$GANDEPLOY_HOME`` when
it is set, else the current directory. Flags (``--out``, ``--data-root``, ``--model-repository``, ``--log-file``)
and the Python API's arguments always win; the defaults are read at call time, so setting ``GANDEPLOY_HOME``
in a notebook or a service applies to the next call.

    =====================  ==============================  =====================================
    what                   default (under the workspace)   written by
    =====================  ==============================  =====================================
    run dirs               ``training/runs/MODEL-DATASET``  ``gandeploy train`` / ``gandeploy.train``
    downloaded data sets   ``training/data/``               ``train`` (horse2zebra, ...), feature nets
    export dirs            ``export/NAME``                  ``gandeploy export`` / ``gandeploy.export``
    model repository       ``model_repository/``            ``gandeploy repo`` / ``gandeploy.build_repository``
    tritonserver logs      ``serving/logs/``                ``gandeploy serve`` / ``gandeploy.Server``
    =====================  ==============================  =====================================

The user cache (prepared Triton backends, the digits classifier) is not a workspace folder: it lives in
``$GANDEPLOY_CACHE`` (else ``$XDG_CACHE_HOME/gandeploy``, else ``~/.cache/gandeploy``).
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "GANDEPLOY_HOME"

RUNS = Path("training/runs")
DATA = Path("training/data")
EXPORTS = Path("export")
REPOSITORY = Path("model_repository")
LOGS = Path("serving/logs")


def workspace() -> Path:
    """``$GANDEPLOY_HOME`` when set (``~`` expanded), else the current directory as a relative ``Path(".")``
    (so defaults print as the short relative paths the README shows)."""
    home = os.environ.get(HOME_VARIABLE)
    return Path(home).expanduser() if home else Path()


def runs_dir() -> Path:
    """Where ``train`` puts run dirs: ``<workspace>/training/runs``."""
    return workspace() / RUNS


def data_dir() -> Path:
    """Where downloadable data sets and cached feature nets live: ``<workspace>/training/data``."""
    return workspace() / DATA


def exports_dir() -> Path:
    """Where ``export`` puts export dirs: ``<workspace>/export``."""
    return workspace() / EXPORTS


def repository_dir() -> Path:
    """The model repository ``repo`` builds and ``serve`` serves: ``<workspace>/model_repository``."""
    return workspace() / REPOSITORY


def logs_dir() -> Path:
    """Where ``serve`` writes tritonserver's logs: ``<workspace>/serving/logs``."""
    return workspace() / LOGS
