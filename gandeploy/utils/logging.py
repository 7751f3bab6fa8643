"""Logging set-up shared by every command: messages to stderr, results to stdout."""

from __future__ import annotations

import logging

LOGGER_NAME = "gandeploy"


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger or one of its children (``gandeploy.<name>``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def setup_logging(verbose: int = 0) -> None:
    """Configure the ``gandeploy`` logger once: INFO by default, DEBUG with ``-v``."""
    logger = logging.getLogger(LOGGER_NAME)
    level = logging.DEBUG if verbose > 0 else logging.INFO
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
