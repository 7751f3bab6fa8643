"""InfoGAN's learning rule (Chen et al., 2016): the GAN game plus a variational bound on the mutual information
between the latent codes and the generated picture.

L_I = λ_cat · CE(Q_cat(G(z, c, u)), c) + λ_cont · ½‖Q_μ(G(z, c, u)) − u‖² (Gaussian NLL with unit variance, up to a
constant). Q is a head on D's trunk and belongs to D's parameters, so D's optimizer owns it (as in the reference
implementation): L_I is added to D's loss in the D step (training Q and the shared trunk on fakes) and to G's loss
in the G step (training G to keep its codes readable). Codes are drawn by role: the categorical code uniform over
[0, n_cat), the continuous codes U(−1, 1).

``lambda_real`` (off by default) adds, in the D step, a clustering term on the *real* batch (regularised
information maximisation, Krause et al., 2010): λ_real · (H[Q_cat(c | x)] averaged over the batch − H[the batch's
mean Q_cat]). Q must then use every category, evenly and confidently, on real pictures as well as on fakes, so two
categories cannot both claim one digit while another digit has none.

``lambda_aug`` (off by default) adds the categorical loss on *transformed* fakes (``diffaug.style_jitter``:
rotation, zoom, shift, thicker or thinner strokes; Elastic-InfoGAN's identity-preserving transformations, Ojha et
al., 2020). Q must read the category through a change of style, so G cannot mark its categories by style
(slant, thickness, place); the category has to be what the transforms keep: the digit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gandeploy.config import RunConfig
from gandeploy.models.io import CATEGORICAL_CODE, CONTINUOUS_CODE, LATENT
from gandeploy.training.diffaug import style_jitter
from gandeploy.training.gan import SamplingTask
from gandeploy.training.task import TrainConfig


@dataclass(frozen=True)
class InfoGANOptions:
    """InfoGAN's own training fields; each is a ``gandeploy train`` flag."""

    lambda_cat: float = field(default=1.0, metadata={"help": "Weight of the categorical-code information loss  "
                                                             "[default: 1.0]"})
    lambda_cont: float = field(default=0.1, metadata={"help": "Weight of the continuous-code information loss  "
                                                              "[default: 0.1]"})

    lambda_real: float = field(default=0.0, metadata={"help": "Weight of the clustering term on real pictures: Q "
                                                              "uses every category, evenly and confidently, on "
                                                              "the real batch (0: off)  [default: 0.0]"})

    lambda_aug: float = field(default=0.0, metadata={"help": "Weight of the categorical-code loss on fakes "
                                                             "rotated, zoomed, shifted and with thicker or "
                                                             "thinner strokes: the category must survive a "
                                                             "change of style (0: off)  [default: 0.0]"})

    def __post_init__(self) -> None:
        for name in ("lambda_cat", "lambda_cont", "lambda_real", "lambda_aug"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (got {getattr(self, name)})")


SWEEP = torch.linspace(-2.0, 2.0, 9)  # continuous-code values of the traversal figures


def q_entropies(cat_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(H[Q(c | x)] averaged over the batch, H[the batch's mean Q(c | x)]) in nats, for Q's categorical logits
    [N, n_cat]: the first is low when Q reads each picture confidently, the second high when it uses every category
    evenly; their difference estimates the mutual information between picture and category."""
    log_p = F.log_softmax(cat_logits.float(), dim=1)  # [N, n_cat]
    p = log_p.exp()
    h_cond = -(p * log_p).sum(dim=1).mean()
    marginal = p.mean(dim=0)  # [n_cat]
    h_marginal = -(marginal * marginal.clamp_min(1e-12).log()).sum()
    return h_cond, h_marginal


class InfoGANTask(SamplingTask):
    """``SamplingTask`` whose critic term on fakes adds the mutual-information loss through D's Q head."""

    Options = InfoGANOptions

    def __init__(self, run: RunConfig, train: TrainConfig, device: torch.device, dataset: Any) -> None:
        super().__init__(run, train, device, dataset)
        self.code_name = self.io.by_role(CATEGORICAL_CODE)[0].name
        self.cont_name = self.io.by_role(CONTINUOUS_CODE)[0].name
        info = ("info_cat", "info_cont")
        real = ("real_H_cond", "real_H_marginal") if self.options.lambda_real > 0 else ()
        info = (*info, "info_cat_aug") if self.options.lambda_aug > 0 else info
        self.loss_names = (*self.loss_names, *info, *(f"{k}_G" for k in info), *real)

    def save_samples(self, path: Path, step: int) -> Path:
        """The sample grid (one row per category), and ``traversal_c<i>.png`` in the run dir for each continuous
        code i: one row per category, columns sweeping code i over [-2, 2] with z and the other codes fixed."""
        from gandeploy.training import plots

        grid = super().save_samples(path, step)
        cat, cont = self.io.by_role(CATEGORICAL_CODE)[0], self.io.by_role(CONTINUOUS_CODE)[0]
        rows, m = min(cat.classes, 20), int(cont.shape[1])
        z = self.fixed[self.io.by_role(LATENT)[0].name][:1].repeat(rows * len(SWEEP), 1)  # one z throughout
        for i in range(m):
            values = torch.zeros(rows * len(SWEEP), m)
            values[:, i] = SWEEP.repeat(rows)
            inputs = {self.io.by_role(LATENT)[0].name: z, cat.name: torch.arange(rows).repeat_interleave(len(SWEEP)),
                      cont.name: values}
            plots.save_image_grid(self.generate(inputs), path.parent.parent / f"traversal_c{i}.png", nrow=len(SWEEP))
        return grid

    def critic_fake(self, D: nn.Module, fake: torch.Tensor, inputs: dict[str, torch.Tensor],
                    gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        logits, cat_logits, cont_mean = D(fake, with_q=True)  # [N], [N, n_cat], [N, n_cont]
        o: InfoGANOptions = self.options
        code = inputs[self.code_name]
        cat = F.cross_entropy(cat_logits.float(), code)
        cont = 0.5 * ((cont_mean.float() - inputs[self.cont_name]) ** 2).sum(dim=1).mean()
        loss, logs = o.lambda_cat * cat + o.lambda_cont * cont, {"info_cat": cat.detach(), "info_cont": cont.detach()}
        if o.lambda_aug > 0:
            if gen is None:
                raise ValueError("lambda_aug draws its transforms from the step's generator: pass gen")
            _, cat_moved, _ = D(style_jitter(fake, gen), with_q=True)  # [N, n_cat]
            cat_aug = F.cross_entropy(cat_moved.float(), code)
            loss, logs["info_cat_aug"] = loss + o.lambda_aug * cat_aug, cat_aug.detach()
        return logits, loss, logs

    def critic_real(self, D: nn.Module, real: torch.Tensor, inputs: dict[str, torch.Tensor],
                    gen: torch.Generator | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor | float, dict[str, torch.Tensor]]:
        o: InfoGANOptions = self.options
        if o.lambda_real <= 0:
            return super().critic_real(D, real, inputs, gen)
        logits, cat_logits, _ = D(real, with_q=True)  # [N], [N, n_cat], [N, n_cont]
        h_cond, h_marginal = q_entropies(cat_logits)
        return logits, o.lambda_real * (h_cond - h_marginal), {"real_H_cond": h_cond.detach(),
                                                               "real_H_marginal": h_marginal.detach()}
