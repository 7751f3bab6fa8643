"""``gandeploy diagnose``: the optimal-discriminator theorem checked on a trained 1D/2D mixture run.

For fixed G the best discriminator is D*(x) = p_r(x) / (p_r(x) + p_g(x)) and, at it, the value
V(G, D*) = E_r log D* + E_g log(1 - D*) = 2·JS(p_r ‖ p_g) − 2·log 2 (Goodfellow et al. 2014, Prop. 1, Thm. 1).

* p_r: the mixture's closed form (data/mixtures.py ``density``).
* p_g: a Gaussian KDE of ``n_kde`` generated points. Bandwidth (unless given): the candidate, on a log grid
  around Scott's rule h = σ̂ · n^(−1/(d+4)), with the highest log-likelihood of held-out generated points
  (likelihood cross-validation on a subset, rescaled to ``n_kde`` by Scott's n^(−1/(d+4)) law). Scott's rule
  alone over-smooths sharp mixtures (ring8's modes have std 0.02; Scott gives ~0.3). KDE still smooths:
  p_g's modes come out a little wider and lower than G's own.
* D(x): sigmoid of the trained discriminator's logit (minimax / non-saturating: both train D on the same
  cross-entropy, so D* is the same); LSGAN (targets 0/1): its raw output, whose optimum is also D*; WGAN and
  hinge critics have no D* (their outputs are not probabilities) and are reported with that caveat.

D and D* are compared on fresh points from the mixture (p_r + p_g)/2 — where the theorem constrains D; off
the support nothing does — as a mean absolute difference and a Pearson correlation. JS is given two ways:
(V(G, D) + 2 log 2)/2 from D's own value (a lower bound: V(G, D) ≤ V(G, D*)), and by Monte Carlo from the
densities, 0.5·E_r log(2p_r/(p_r+p_g)) + 0.5·E_g log(2p_g/(p_r+p_g)).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gandeploy.errors import UserInputError
from gandeploy.utils.logging import get_logger

log = get_logger("diagnose")

PROB_LOSSES = ("minimax", "nonsat")
EPS = 1e-12


@dataclass(frozen=True)
class Diagnosis:
    """D vs D* and JS two ways (nats; JS ≤ log 2 ≈ 0.693)."""

    loss: str
    dataset: str
    bandwidth: float
    n_kde: int
    n_eval: int
    mad: float  # E_{(p_r+p_g)/2} |D − D*|
    corr: float  # Pearson correlation of D and D* over the same points
    value: float  # V(G, D) = E_r log D + E_g log(1 − D)
    js_from_d: float  # (V + 2 log 2) / 2
    js_from_densities: float
    worst_x: list[float]  # where |D − D*| is largest on the plotting grid (within the support)
    worst_gap: float
    has_d_star: bool
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scott_bandwidth(samples: torch.Tensor) -> float:
    """Scott's rule for a Gaussian KDE of ``samples`` [n, d]: pooled std · n^(−1/(d+4))."""
    n, d = samples.shape
    return float(samples.double().std(dim=0).mean()) * n ** (-1.0 / (d + 4))


def select_bandwidth(samples: torch.Tensor, heldout: torch.Tensor, n_target: int, fit_n: int = 4000,
                     eval_n: int = 2000, candidates: int = 30) -> float:
    """Likelihood cross-validated KDE bandwidth for ``n_target`` samples (see the module docstring)."""
    fit, held = samples[:fit_n].double(), heldout[:eval_n].double()
    d = fit.shape[1]
    scott = scott_bandwidth(fit)
    sq = torch.cdist(held, fit) ** 2  # [eval_n, fit_n]
    best, best_ll = scott, -math.inf
    for h in np.geomspace(scott / 100, scott * 2, candidates):
        log_k = -sq / (2 * h * h) - 0.5 * d * math.log(2 * math.pi * h * h)  # [eval_n, fit_n]
        ll = float((torch.logsumexp(log_k, dim=1) - math.log(fit.shape[0])).mean())
        if ll > best_ll:
            best, best_ll = float(h), ll
    return best * (fit.shape[0] / max(n_target, 1)) ** (1.0 / (d + 4))


def kde_density(samples: torch.Tensor, x: torch.Tensor, bandwidth: float, chunk: int = 4096) -> torch.Tensor:
    """Gaussian KDE of ``samples`` [n, d] at ``x`` [m, d]: [m] float64."""
    s = samples.double()
    d = s.shape[1]
    norm = (2 * math.pi * bandwidth**2) ** (d / 2)
    out = [torch.exp(-torch.cdist(x[i:i + chunk].double(), s) ** 2 / (2 * bandwidth**2)).mean(dim=1) / norm
           for i in range(0, x.shape[0], chunk)]
    return torch.cat(out)


def d_probability(logits: torch.Tensor, loss: str) -> torch.Tensor:
    """D's output as a probability of 'real': sigmoid for the cross-entropy losses, the raw value for LSGAN."""
    if loss == "lsgan":
        return logits.double().clamp(0.0, 1.0)
    return torch.sigmoid(logits.double())


def _grid(ds: Any, steps: int) -> tuple[torch.Tensor, list[np.ndarray]]:
    c = ds.centres.double()
    lo, hi = float(c.min()) - 4 * ds.std - 0.5, float(c.max()) + 4 * ds.std + 0.5
    axis = torch.linspace(lo, hi, steps, dtype=torch.float64)
    if ds.data_dim == 1:
        return axis[:, None], [axis.numpy()]
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1), [axis.numpy(), axis.numpy()]


@torch.no_grad()
def diagnose(run_dir: str | os.PathLike[str], *, n_kde: int = 20_000, n_eval: int = 20_000,
             bandwidth: float | None = None, seed: int = 0, grid_steps: int | None = None) -> tuple[Diagnosis, dict]:
    """Diagnose a trained mlp run on a point mixture; returns the figures and the grid arrays for the plot."""
    from gandeploy.config import load_run_config
    from gandeploy.data import KIND_POINTS, open_dataset
    from gandeploy.registry import get_model
    from gandeploy.training.checkpoint import latest_checkpoint, load_checkpoint, load_state_into

    run = load_run_config(run_dir)
    ds = open_dataset(run.dataset or "", "gan") if run.dataset else None
    if ds is None or getattr(ds, "kind", None) != KIND_POINTS or not hasattr(ds, "density"):
        raise UserInputError(f"'{run_dir}' was trained on {run.dataset!r}: diagnose needs an mlp run on a point "
                             "mixture with a closed-form density (mix1d, ring8, grid25).")
    loss = str((run.train or {}).get("loss", "nonsat"))
    spec = get_model(run.model)
    state = load_checkpoint(latest_checkpoint(run_dir))
    G, D = spec.build_generator(run.arch).eval(), spec.build_discriminator(run.arch).eval()
    load_state_into(G, state["models"]["G"], "G")
    load_state_into(D, state["models"]["D"], "D")
    gen = torch.Generator().manual_seed(seed)
    nz = int(run.arch.nz)
    kde_pts = G(torch.randn(n_kde, nz, generator=gen)).double()  # [n_kde, d]: builds p_g
    fake = G(torch.randn(n_eval, nz, generator=gen)).double()  # [n_eval, d]: fresh, for the expectations
    real = ds.sample(n_eval, seed=seed + 1).double()  # [n_eval, d]
    h = float(bandwidth) if bandwidth else select_bandwidth(kde_pts, fake, n_kde)

    def p_g(x: torch.Tensor) -> torch.Tensor:
        return kde_density(kde_pts, x, h)

    def d_of(x: torch.Tensor) -> torch.Tensor:
        return d_probability(D(x.float()).flatten(), loss)

    pr_r, pg_r, pr_f, pg_f = ds.density(real), p_g(real), ds.density(fake), p_g(fake)
    both_d = torch.cat([d_of(real), d_of(fake)])  # points of (p_r + p_g)/2
    both_star = torch.cat([pr_r / (pr_r + pg_r + EPS), pr_f / (pr_f + pg_f + EPS)])
    mad = float((both_d - both_star).abs().mean())
    corr = float(np.corrcoef(both_d.numpy(), both_star.numpy())[0, 1]) if both_star.std() > 0 else float("nan")
    d_real, d_fake = d_of(real).clamp(EPS, 1 - 1e-12), d_of(fake).clamp(EPS, 1 - 1e-12)
    value = float(d_real.log().mean() + (1 - d_fake).log().mean())
    js_d = (value + 2 * math.log(2)) / 2
    js_p = float(0.5 * torch.log(2 * pr_r / (pr_r + pg_r + EPS) + EPS).mean()
                 + 0.5 * torch.log(2 * pg_f / (pr_f + pg_f + EPS) + EPS).mean())

    steps = grid_steps or (801 if ds.data_dim == 1 else 161)
    grid, axes = _grid(ds, steps)
    g_pr, g_pg = ds.density(grid), p_g(grid)
    g_star, g_d = g_pr / (g_pr + g_pg + EPS), d_of(grid)
    support = (g_pr + g_pg) > 0.01 * float((g_pr + g_pg).max())
    gap = torch.where(support, (g_d - g_star).abs(), torch.zeros_like(g_d))
    worst = int(gap.argmax())
    diag = Diagnosis(loss, str(run.dataset), h, n_kde, n_eval, mad, corr, value, js_d, js_p,
                     grid[worst].tolist(), float(gap[worst]), loss in PROB_LOSSES + ("lsgan",))
    diag = Diagnosis(**{**asdict(diag), "text": explain(diag, float(g_pr[worst]), float(g_pg[worst]))})
    off = ~((g_pr + g_pg) > 1e-4 * float((g_pr + g_pg).max()))  # D* is 0/0 there: left blank in the plot
    arrays = {"axes": axes, "p_r": g_pr.numpy(), "p_g": g_pg.numpy(), "d": g_d.numpy(),
              "d_star": torch.where(off, torch.full_like(g_star, float("nan")), g_star).numpy(),
              "fake": fake[:5000].numpy(), "real": real[:5000].numpy(), "dim": ds.data_dim}
    return diag, arrays


def explain(d: Diagnosis, pr_at_worst: float, pg_at_worst: float) -> str:
    """Where and why D and D* disagree, in words."""
    lines = []
    if not d.has_d_star:
        lines.append(f"The {d.loss} critic is not a classifier: its output is not a probability and there is no D* "
                     "(WGAN/hinge critics estimate a distance instead), so D vs D* and JS-from-D are shown for "
                     "reference only.")
    if d.loss == "nonsat":
        lines.append("Non-saturating loss: D is trained with the same cross-entropy as in minimax, so D* is still "
                     "its optimum for a fixed G; only G's gradient differs.")
    if d.js_from_densities > 0.95 * math.log(2):
        lines.append("p_r and p_g barely overlap (JS near log 2): D* is 0 or 1 on all the data, so any separating D "
                     "is optimal and agreement says nothing about D off the data — the saturated regime in which "
                     "the min-max generator gets no gradient (Arjovsky & Bottou 2017).")
    quality = "tracks" if d.mad < 0.1 and d.corr > 0.9 else "does not track"
    lines.append(f"D {quality} D* on the data (mean |D − D*| {d.mad:.3f}, correlation {d.corr:.3f} over points of "
                 f"(p_r + p_g)/2).")
    where = ", ".join(f"{v:.2f}" for v in d.worst_x)
    side = "real-dominated" if pr_at_worst > pg_at_worst else "generator-dominated"
    lines.append(f"The largest gap on the support, {d.worst_gap:.3f}, is at x = ({where}), a {side} point "
                 f"(p_r {pr_at_worst:.3g}, p_g {pg_at_worst:.3g}). Gaps gather where one density is small: D saw "
                 "few samples there, and the KDE (bandwidth %.3g) spreads p_g into the tails and between modes, "
                 "biasing D* itself." % d.bandwidth)
    gap = d.js_from_densities - d.js_from_d
    lines.append(f"JS from D's value {d.js_from_d:.4f} vs from the densities {d.js_from_densities:.4f} nats "
                 f"(difference {gap:+.4f}): the value gives a lower bound (up to Monte Carlo error and the KDE's bias), tight only when D = D*; a D short of "
                 "optimal (too few critic steps, finite capacity, minibatch noise) makes it smaller.")
    return " ".join(lines)


def plot(diag: Diagnosis, arrays: dict, path: Path) -> Path:
    """1D: densities above, D and D* below. 2D: D, D* and |D − D*| maps with the real density's contours."""
    from gandeploy.training.plots import _pyplot, _save_figure

    plt = _pyplot()
    if arrays["dim"] == 1:
        x = arrays["axes"][0]
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True)
        top.plot(x, arrays["p_r"], label="p_r (closed form)", color="tab:blue")
        top.plot(x, arrays["p_g"], label=f"p_g (KDE, h = {diag.bandwidth:.3f})", color="tab:orange")
        top.hist(arrays["fake"][:, 0], bins=120, range=(x[0], x[-1]), density=True, alpha=0.25, color="tab:orange")
        top.legend(loc="upper right")
        top.set_ylabel("density")
        bottom.plot(x, arrays["d"], label="D(x)", color="tab:red")
        bottom.plot(x, arrays["d_star"], "--", label="D*(x) = p_r / (p_r + p_g)", color="black")
        bottom.set_ylim(-0.05, 1.05)
        bottom.set_ylabel("probability real")
        bottom.legend(loc="upper right")
        bottom.set_title(f"mean |D − D*| {diag.mad:.3f}, corr {diag.corr:.3f}; JS from D {diag.js_from_d:.3f}, "
                         f"from densities {diag.js_from_densities:.3f}", fontsize=9)
    else:
        ax0 = arrays["axes"][0]
        n = len(ax0)
        ext = (ax0[0], ax0[-1], ax0[0], ax0[-1])
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
        maps = [("D(x)", arrays["d"]), ("D*(x) = p_r/(p_r+p_g)", arrays["d_star"]),
                ("|D − D*|", np.abs(arrays["d"] - arrays["d_star"]))]
        for ax, (title, m) in zip(axes, maps, strict=True):
            im = ax.imshow(m.reshape(n, n).T, origin="lower", extent=ext, vmin=0, vmax=1, cmap="viridis")
            ax.contour(ax0, ax0, arrays["p_r"].reshape(n, n).T, levels=3, colors="white", linewidths=0.5)
            ax.set_title(title)
        fig.colorbar(im, ax=axes.tolist(), shrink=0.8)
        fig.suptitle(f"{diag.dataset} ({diag.loss}): mean |D − D*| {diag.mad:.3f}, corr {diag.corr:.3f}; JS from D "
                     f"{diag.js_from_d:.3f}, from densities {diag.js_from_densities:.3f}", fontsize=10)
    return _save_figure(fig, path)


def markdown(diag: Diagnosis, run_dir: str) -> str:
    return "\n".join([
        f"# diagnose {run_dir}", "",
        f"{diag.dataset}, loss {diag.loss}; p_g by Gaussian KDE of {diag.n_kde} samples, bandwidth {diag.bandwidth:.4g} "
        f"(held-out likelihood unless given); expectations over {diag.n_eval} real + {diag.n_eval} generated points.", "",
        "| figure | value |", "|---|---|",
        f"| mean abs D − D* | {diag.mad:.4f} |", f"| correlation D, D* | {diag.corr:.4f} |",
        f"| V(G, D) | {diag.value:.4f} |", f"| JS from D: (V + 2 log 2)/2 | {diag.js_from_d:.4f} |",
        f"| JS from the densities | {diag.js_from_densities:.4f} |", "", diag.text, ""])
