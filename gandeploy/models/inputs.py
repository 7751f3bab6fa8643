"""Generator inputs drawn by *role* (``gandeploy.models.io``), so one training loop serves every sampling family.

| role               | training draw                                   |
|--------------------|-------------------------------------------------|
| latent             | N(0, I), [N, nz]                                |
| class_label        | the real batch's labels (D step) or uniform     |
| categorical_code   | uniform over [0, classes)                       |
| continuous_code    | U(low, high), [N, M]                            |

Draws happen in the generator's input order from the caller's ``torch.Generator`` (counter-based randomness).
"""

from __future__ import annotations

import torch

from gandeploy.models.io import CLASS_LABEL, CONTINUOUS_CODE, INDEX_ROLES, LATENT, GeneratorIO

ROW = 10  # samples per row of a sample grid with an index input (one row per class / category)
MAX_ROWS = 20


def draw_inputs(io: GeneratorIO, n: int, gen: torch.Generator,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One batch of generator inputs (CPU tensors), keyed by input name; ``labels`` fills the class_label role."""
    out: dict[str, torch.Tensor] = {}
    for spec in io.inputs:
        if spec.role == LATENT:
            out[spec.name] = torch.randn(n, int(spec.shape[1]), generator=gen)  # [N, nz]
        elif spec.role == CLASS_LABEL and labels is not None:
            out[spec.name] = labels
        elif spec.role in INDEX_ROLES:
            out[spec.name] = torch.randint(0, spec.classes, (n,), generator=gen)  # [N]
        elif spec.role == CONTINUOUS_CODE:
            low, high = float(spec.low), float(spec.high)  # type: ignore[arg-type]
            out[spec.name] = low + (high - low) * torch.rand(n, int(spec.shape[1]), generator=gen)  # [N, M]
        else:
            raise ValueError(f"input '{spec.name}' (role {spec.role}) is not drawn by a sampling task")
    return out


def fixed_inputs(io: GeneratorIO, gen: torch.Generator, n_plain: int = 64) -> tuple[dict[str, torch.Tensor], int]:
    """The fixed inputs of sample grids and the grid's row length.

    With an index input (class label or categorical code): one row of ``ROW`` latents per index value (at most
    ``MAX_ROWS`` rows), continuous codes at 0. Otherwise ``n_plain`` latents in a square grid.
    """
    index = [s for s in io.inputs if s.role in INDEX_ROLES]
    rows = min(index[0].classes, MAX_ROWS) if index else 0
    n = rows * ROW if index else n_plain
    out: dict[str, torch.Tensor] = {}
    for spec in io.inputs:
        if spec.role == LATENT:
            out[spec.name] = torch.randn(n, int(spec.shape[1]), generator=gen)
        elif spec.role in INDEX_ROLES:
            out[spec.name] = (torch.arange(rows).repeat_interleave(ROW) if spec is index[0]
                              else torch.zeros(n, dtype=torch.int64))  # row r shows index r
        elif spec.role == CONTINUOUS_CODE:
            out[spec.name] = torch.zeros(n, int(spec.shape[1]))
    return out, (ROW if index else max(1, int(round(n ** 0.5))))
