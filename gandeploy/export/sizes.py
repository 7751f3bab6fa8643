"""Image sizes an export accepts: min / opt / max H x W from the flags, the training size and the generator.

``plan_sizes`` validates ``--min-size`` / ``--opt-size`` / ``--max-size`` against the size rule the generator
declares; the default minimum is measured (``smallest_side``): the smallest side the PyTorch generator runs at.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gandeploy.config import RunConfig
from gandeploy.errors import UserInputError
from gandeploy.models.io import HW, IMAGE, GeneratorIO, example_inputs
from gandeploy.utils.logging import get_logger

log = get_logger(__name__)


def torch_runs_at(module: nn.Module, io_spec: GeneratorIO) -> Callable[[int], bool] | None:
    """``runs_at(side)``: whether ``module`` maps a side x side picture to ``scale`` x that size (None for
    generators without a picture input)."""
    image = io_spec.image_input
    if image is None:
        return None

    def runs_at(side: int) -> bool:
        feeds = {n: torch.from_numpy(v) for n, v in example_inputs(io_spec, 1, image_hw=(side, side)).items()}
        try:
            with torch.no_grad():
                out = module(*(feeds[n] for n in io_spec.input_names))
        except (RuntimeError, ValueError, IndexError) as exc:  # e.g. a reflection pad longer than the feature map
            log.debug("the generator does not run at %dx%d: %s", side, side, str(exc).splitlines()[0])
            return False
        out = out[0] if isinstance(out, (tuple, list)) else out
        return tuple(out.shape[-2:]) == (side * io_spec.scale, side * io_spec.scale)

    return runs_at


def smallest_side(runs_at: Callable[[int], bool], multiple: int, cap: int) -> int:
    """The smallest of k, 2k, 4k, ... below ``cap`` at which ``runs_at`` holds; ``cap`` when none does."""
    side = multiple
    while side < cap:
        if runs_at(side):
            return side
        side *= 2
    return cap


def plan_sizes(run: RunConfig, io_spec: GeneratorIO, min_size: HW | None, opt_size: HW | None,
               max_size: HW | None, runs_at: Callable[[int], bool] | None = None) -> dict[str, HW] | None:
    """min/opt/max image sizes for image-to-image models (None for sampling models); flags validated.

    The default minimum is the smallest side the generator runs at (``runs_at``, tried at k, 2k, 4k, ... for the
    size rule k, up to 64): serving pads a smaller picture up to the minimum, and padding beyond the size rule
    changes the output near the padded border (every layer's own zero padding sees picture there instead), so
    a low minimum keeps small pictures equal to the network run on them as they are."""
    given = {"--min-size": min_size, "--opt-size": opt_size, "--max-size": max_size}
    if not io_spec.by_role(IMAGE):  # a fixed output size: no image sizes to plan
        used = [flag for flag, v in given.items() if v is not None]
        if used:
            verb = "applies" if len(used) == 1 else "apply"
            raise UserInputError(f"{'/'.join(used)} {verb} only to image-to-image models (a picture input); "
                                 f"'{run.model}' generates a fixed output size.")
        return None
    k = io_spec.size_multiple
    for flag, value in given.items():
        if value is None:
            continue
        if len(value) != 2 or min(value) < 1 or value[0] % k or value[1] % k:
            raise UserInputError(f"{flag} must be HxW with H and W positive multiples of {k} (the size rule "
                                 f"'{run.model}' declares), got {'x'.join(map(str, value))}.")
    s = _round_up(int(getattr(run.arch, "image_size", 0) or 256), k)
    opt = opt_size or _clamp((s, s), min_size, max_size)
    side = smallest_side(runs_at, k, _round_up(64, k)) if runs_at is not None else _round_up(64, k)
    lo = min_size or (min(side, opt[0]), min(side, opt[1]))
    hi = max_size or (max(_round_up(512, k), opt[0]), max(_round_up(512, k), opt[1]))
    named = {"--min-size": lo, "--opt-size": opt, "--max-size": hi}
    for a, b in (("--min-size", "--max-size"), ("--min-size", "--opt-size"), ("--opt-size", "--max-size")):
        (ah, aw), (bh, bw) = named[a], named[b]
        if ah > bh or aw > bw:
            def label(flag: str) -> str:
                return f"{flag} {named[flag][0]}x{named[flag][1]}" + ("" if given[flag] else " (default)")

            raise UserInputError(f"{label(a)} must not exceed {label(b)}: need min <= opt <= max in both H and W.")
    return {"min": (int(lo[0]), int(lo[1])), "opt": (int(opt[0]), int(opt[1])), "max": (int(hi[0]), int(hi[1]))}


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _clamp(hw: HW, lo: HW | None, hi: HW | None) -> HW:
    h, w = hw
    if lo:
        h, w = max(h, lo[0]), max(w, lo[1])
    if hi:
        h, w = min(h, hi[0]), min(w, hi[1])
    return h, w
