"""The pieces the reports share: a value formatter, a Markdown table, a figure's PNG bytes, panels stacked into
one PNG file."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any


def fmt(value: Any, spec: str = ".2e") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-Markdown table (also readable on a terminal)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def figure_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def write_stacked_png(path: Path, panels: list[Any], gap: int = 8) -> Path:
    """PIL images ``panels`` one under another on white, ``gap`` px apart, written atomically as a PNG."""
    import numpy as np
    from PIL import Image

    from gandeploy.utils.io import atomic_write_bytes
    from gandeploy.wire import encode_png

    canvas = Image.new("RGB", (max(p.width for p in panels), sum(p.height for p in panels) + gap * (len(panels) - 1)),
                       "white")
    top = 0
    for p in panels:
        canvas.paste(p, (0, top))
        top += p.height + gap
    atomic_write_bytes(path, encode_png(np.asarray(canvas)))
    return path
