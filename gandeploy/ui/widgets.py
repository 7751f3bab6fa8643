"""What the demo page shows for one served model, derived only from its served contract (no per-family code).

Each served input becomes one widget by its *role* (``gandeploy.contract``):

| served role                      | widget                                                  |
|----------------------------------|---------------------------------------------------------|
| ``seed``                         | integer box, 0 .. 2**63 - 1                             |
| ``truncation`` (optional)        | slider 0 .. 3, 0 = none (left out); 0 < t < 0.02 refused|
| ``class_label`` / ``categorical_code`` | drop-down of the ``classes`` (class names where known) |
| ``continuous_code`` [M]          | M sliders over the training range ``low .. high``       |
| ``image`` (bytes)                | an upload box; the file's bytes go to the server as-is  |

Interpolation strip (decision): **client-side**. The served ``NAME`` takes seeds, not latents, so the strip
draws both seeds' latents with ``latent_from_seed`` (the documented source of randomness, same truncation),
spherically interpolates them here, and sends the latents with the other inputs' generator values to the raw
``NAME_generator`` model (served for parity anyway); its float output goes through the served uint8 map
``to_uint8``. The end frames therefore equal the served pictures of the two seeds to within one uint8 level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandeploy.contract import SEED, SEED_MAX, TRUNCATION, ServedContract
from gandeploy.models import io as gio

TRUNCATION_MAX = 3.0  # slider range for the truncation trick; 0 on the slider = no truncation


@dataclass(frozen=True)
class Widget:
    """One control: the served input ``name`` it sets (``component``: which entry of a vector input)."""

    name: str
    kind: str  # "integer" | "choice" | "slider" | "upload"
    label: str
    choices: tuple[tuple[str, int], ...] = ()
    low: float = 0.0
    high: float = 0.0
    default: float = 0.0
    step: float = 1.0
    component: int | None = None

    @property
    def key(self) -> str:
        """A unique id on the page: ``name`` or ``name-component``."""
        return self.name if self.component is None else f"{self.name}-{self.component}"


def widgets(contract: ServedContract) -> tuple[Widget, ...]:
    """The controls of one served model, in served input order (see the module table)."""
    out: list[Widget] = []
    for t in contract.inputs:
        if t.role == SEED:
            out.append(Widget(t.name, "integer", "seed", low=0, high=float(SEED_MAX)))
        elif t.role == TRUNCATION:
            out.append(Widget(t.name, "slider", f"truncation (0 = none, else >= {gio.TRUNCATION_MIN})", low=0.0,
                              high=TRUNCATION_MAX, step=0.05))
        elif t.role == gio.IMAGE:
            out.append(Widget(t.name, "upload", "picture (PNG / JPEG)"))
        elif t.classes:
            names = contract.class_names if t.role == gio.CLASS_LABEL and contract.class_names else None
            choices = tuple((_choice_label(i, names), i) for i in range(t.classes))
            out.append(Widget(t.name, "choice", t.name.replace("_", " "), choices=choices))
        else:  # a vector of floats (continuous codes): one slider per entry over the training range
            low, high = (t.low, t.high) if t.low is not None and t.high is not None else (-1.0, 1.0)
            width = int(np.prod(t.dims))
            centre = float(np.clip(0.0, low, high))  # the documented default fill: zeros
            out.extend(Widget(t.name, "slider", f"{t.name} [{i}]", low=low, high=high, default=centre,
                              step=(high - low) / 100, component=i if width > 1 or t.dims != (1,) else None)
                       for i in range(width))
    return tuple(out)


def _choice_label(index: int, names: Sequence[str] | None) -> str:
    """``"3: cat"`` where a class name is known (and says more than the index), else ``"3"``."""
    if not names or index >= len(names) or names[index] == str(index):
        return str(index)
    return f"{index}: {names[index]}"


def given_values(contract: ServedContract, controls: Sequence[Widget], values: Sequence[Any]) -> dict[str, Any]:
    """Served non-seed input values from the widgets' ``values`` (same order as ``controls``), keyed by served
    name, for ``ServedContract.request``: choices as ints, vectors gathered, truncation 0 → not sent."""
    given: dict[str, Any] = {}
    vectors: dict[str, dict[int, float]] = {}
    for w, value in zip(controls, values, strict=True):
        if w.kind in ("integer", "upload") or value is None:
            continue
        if w.kind == "choice":
            given[w.name] = int(value)
        elif w.name == _truncation_name(contract):
            given[w.name] = float(value) if float(value) > 0 else None
        elif w.component is None:
            given[w.name] = [float(value)]
        else:
            vectors.setdefault(w.name, {})[w.component] = float(value)
    for name, parts in vectors.items():
        given[name] = [parts[i] for i in sorted(parts)]
    return given


def _truncation_name(contract: ServedContract) -> str | None:
    found = [t.name for t in contract.inputs if t.role == TRUNCATION]
    return found[0] if found else None


def seed_of(controls: Sequence[Widget], values: Sequence[Any]) -> int:
    """The seed box's value (a UserInputError-free int: blanks are 0)."""
    for w, value in zip(controls, values, strict=True):
        if w.kind == "integer":
            return int(value or 0)
    return 0
