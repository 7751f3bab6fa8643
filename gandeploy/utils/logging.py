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


def quiet_polygraphy() -> None:
    """Polygraphy logs to stdout; keep only its warnings and errors, without colour (no 'colored' hint)."""
    from polygraphy.logger import G_LOGGER

    G_LOGGER.colors = False
    G_LOGGER.module_severity = G_LOGGER.WARNING
