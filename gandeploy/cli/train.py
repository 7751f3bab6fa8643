"""``gandeploy train MODEL DATASET [options]``: a thin layer over ``gandeploy.training.api.train_run``."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import click

from gandeploy.cli.options import OutPath
from gandeploy.data import ALIGNED_PREFIX, DATASETS, FOLDER_PREFIX, dataset_names
from gandeploy.errors import unknown_choice
from gandeploy.registry import MODELS
from gandeploy.training.task import LOSSES, TrainConfig, option_fields

_D = TrainConfig()


def _epilog() -> str:
    lines = ["\b", "Models:"]
    lines += [f"  {name:<10} {spec.description}" for name, spec in MODELS.items()]
    lines += ["", "\b", "Datasets:"]
    lines += [f"  {name:<24} {d.description} [{'/'.join(d.families)}]" for name, d in DATASETS.items()]
    lines += [f"  {FOLDER_PREFIX + 'PATH':<24} any folder of images (one sub-folder per class for cgan)"]
    lines += [f"  {ALIGNED_PREFIX + 'PATH':<24} pix2pix's aligned layout: A|B side by side in train/, val/, test/"]
    lines += ["", "\b", "Losses:", "  " + ", ".join(f"{x} (default)" if x == _D.loss else x for x in LOSSES)]
    lines += ["", "\b", "Examples:", "  gandeploy train cgan digits --epochs 1",
              "  gandeploy train mlp ring8 --loss wgan-gp --steps 2000",
              "  gandeploy train --recipe cgan-digits",
              "  torchrun --nproc_per_node 2 -m gandeploy.cli train dcgan digits"]
    return "\n".join(lines)


def _check_model(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and value not in MODELS:
        raise click.BadParameter(str(unknown_choice("model", value, MODELS)), param_hint="MODEL")
    return value


def _check_dataset(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith((FOLDER_PREFIX, ALIGNED_PREFIX)) and value not in DATASETS:
        raise click.BadParameter(str(unknown_choice("dataset", value, dataset_names())), param_hint="DATASET")
    return value


def _check_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise click.BadParameter(f"'{value}' is not one of auto, cpu, cuda, cuda:N", param_hint="--device")
    return value


def _check_diffaug(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from gandeploy.training.diffaug import parse_policy

    if value is not None:
        try:
            parse_policy(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("diffaug: "), param_hint="--diffaug") from None
    return value


def _parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got '{pair}'", param_hint="--arch")
        out[key.strip()] = value.strip()
    return out


OPTION_PREFIX = "family__"  # click parameter names of the families' own flags


def _family_flags() -> dict[str, tuple[dataclasses.Field, tuple[str, ...]]]:
    """Every family's own training fields (its task's ``Options``): name → (field, models it applies to)."""
    from gandeploy.training.api import task_class

    found: dict[str, tuple[dataclasses.Field, tuple[str, ...]]] = {}
    for name, spec in MODELS.items():
        for key, f in option_fields(task_class(spec).Options).items():
            models = found[key][1] if key in found else ()
            found[key] = (f, (*models, name))
    return found


def _add_family_flags(command: click.Command) -> click.Command:
    """``--lambda-cycle`` etc.: one flag per family option, documented with the models it applies to."""
    for key, (f, models) in _family_flags().items():
        flag = "--" + key.replace("_", "-")
        help_text = f"{f.metadata.get('help', key)} ({'/'.join(models)} only)"
        if isinstance(f.default, bool):
            decl = [f"{flag}/--no-{key.replace('_', '-')}", OPTION_PREFIX + key]
            command.params.append(click.Option(decl, default=None, help=help_text))
        else:
            kind = type(f.default) if f.default is not None and f.default is not dataclasses.MISSING else float
            command.params.append(click.Option([flag, OPTION_PREFIX + key], type=kind, default=None, help=help_text))
    return command


@_add_family_flags
@click.command("train", epilog=_epilog(), context_settings={"max_content_width": 110})
@click.argument("model", required=False, callback=_check_model)
@click.argument("dataset", required=False, callback=_check_dataset)
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML with model, dataset, [arch], [train], or a shipped recipe's name (cgan-digits; "
                   "training/recipes/); flags override it  [default: the shipped MODEL-DATASET recipe when there "
                   "is one]")
@click.option("--no-recipe", is_flag=True, help="Generic defaults, not the shipped recipe for MODEL x DATASET.")
@click.option("--epochs", type=click.IntRange(min=0), help=f"Passes over the data  [default: {_D.epochs}]")
@click.option("--steps", type=click.IntRange(min=1), help="Generator updates in total (overrides --epochs).")
@click.option("--batch-size", type=click.IntRange(min=1), help=f"Per process  [default: {_D.batch_size}]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate  [default: per loss]")
@click.option("--lr-g", type=click.FloatRange(min=0, min_open=True), help="G's learning rate (TTUR)  [default: --lr]")
@click.option("--lr-d", type=click.FloatRange(min=0, min_open=True), help="D's learning rate (TTUR)  [default: --lr]")
@click.option("--loss", type=click.Choice(LOSSES), help=f"GAN objective  [default: {_D.loss}]")
@click.option("--n-critic", type=click.IntRange(min=1), help="D updates per G update  [default: per loss]")
@click.option("--ema", type=click.FloatRange(min=0, max=1, max_open=True),
              help="Keep a moving average of G's weights with this decay (G_ema; export takes it)  [default: off]")
@click.option("--ema-start", type=click.IntRange(min=0), help="Generator steps before the average starts.")
@click.option("--pack", type=click.IntRange(min=1),
              help="PacGAN: D judges this many samples jointly (divides --batch-size)  [default: 1]")
@click.option("--instance-noise", type=click.FloatRange(min=0),
              help="Std of noise added to D's inputs, falling linearly to 0 over the constant epochs  [default: off]")
@click.option("--diffaug", callback=_check_diffaug, metavar="POLICIES",
              help="DiffAugment: D sees real and generated pictures through these differentiable transforms, "
                   "comma-separated from color, translation, cutout (small data sets)  [default: off]")
@click.option("--r1", type=click.FloatRange(min=0),
              help="R1 penalty gamma: D's loss adds gamma/2 * |grad D(x)|^2 on real samples  [default: off]")
@click.option("--r1-every", type=click.IntRange(min=1),
              help="Lazy R1: apply it every N generator steps with gamma * N  [default: 1]")
@click.option("--zero-gp", type=click.FloatRange(min=0),
              help="Zero-centred gradient penalty weight on real-fake interpolates (any loss)  [default: off]")
@click.option("--ortho", type=click.FloatRange(min=0),
              help="BigGAN's orthogonal regularisation of G with this beta (1e-4 in BigGAN)  [default: off]")
@click.option("--seed", type=int, help=f"All randomness derives from it  [default: {_D.seed}]")
@click.option("--device", callback=_check_device, metavar="auto|cpu|cuda", help="[default: auto]")
@click.option("--out", type=OutPath(directory=True),
              help="Run dir  [default: training/runs/MODEL-DATASET]")
@click.option("--resume", is_flag=True, help="Continue the run dir's checkpoints/latest.pt.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="Where downloadable data sets (CycleGAN) live.")
@click.option("--image-size", type=click.IntRange(min=1), help="Shortcut for --arch image_size=N.")
@click.option("--arch", "arch_pairs", multiple=True, metavar="KEY=VALUE",
              help="Architecture field, repeatable (e.g. --arch ngf=32 --arch d_norm=layer).")
@click.option("--monitor-every", type=click.IntRange(min=0),
              help=f"Steps between health checks (monitor.csv/png; 0: off)  [default: {_D.monitor_every}]")
@click.option("--stop-on-collapse", is_flag=True, default=None,
              help="End the run (with a checkpoint) when the collapse signal drops.")
@click.option("--checkpoint-every", type=click.IntRange(min=1),
              help=f"Steps between checkpoints (also at each epoch end)  [default: {_D.checkpoint_every}]")
@click.option("--keep-every", type=click.IntRange(min=0), help="Keep checkpoints/step_N.pt every N steps.")
@click.option("--amp/--no-amp", default=None, help="Mixed precision on CUDA  [default: on]")
@click.option("--compile/--no-compile", "compile", default=None,
              help="torch.compile G and D (CPU and CUDA; the first steps compile, checkpoints stay plain)  "
                   "[default: off]")
def train(model: str | None, dataset: str | None, recipe: Path | None, no_recipe: bool, arch_pairs: tuple[str, ...],
          image_size: int | None, out: Path | None, resume: bool, data_root: Path | None, **flags: Any) -> None:
    """Train MODEL on DATASET; writes a run dir with config.json, checkpoints, losses and sample grids.

    Without --recipe, the shipped recipe for MODEL x DATASET (training/recipes/MODEL-DATASET.toml) is used when
    there is one (the first line says so; flags override it); --no-recipe gives the generic defaults. --recipe
    takes a file or a shipped recipe's name (--recipe cgan-digits). --resume keeps the run's recorded settings
    instead."""
    from gandeploy.api import train as train_api
    from gandeploy.cli.options import report_outputs
    from gandeploy.training.quality import quality_line

    if recipe is not None and no_recipe:
        raise click.UsageError("--recipe and --no-recipe contradict each other: pass one.")
    if recipe is None and (model is None or dataset is None):
        raise click.UsageError("missing MODEL and/or DATASET: pass both (e.g. 'gandeploy train cgan digits') "
                               "or a --recipe that sets model and dataset.")
    main_rank = int(os.environ.get("RANK", "0")) == 0
    settings = {k[len(OPTION_PREFIX):] if k.startswith(OPTION_PREFIX) else k: v for k, v in flags.items()}
    arch: dict[str, Any] = dict(_parse_pairs(arch_pairs))
    if image_size is not None:
        arch["image_size"] = image_size

    def announce(path: Path) -> None:
        if main_rank:
            click.echo(f"Using the shipped recipe {path} for {model} x {dataset} (flags override it; "
                       "--no-recipe: generic defaults).")

    result = train_api(model, dataset, recipe=recipe, use_recipe=not no_recipe, out=out, arch=arch, resume=resume,
                       data_root=data_root, on_recipe=announce, **settings)
    if main_rank:
        click.echo(quality_line(result))  # label agreement / modes / MAE: a useless run shows at once
        report_outputs(sorted(result.iterdir()), f"gandeploy export {result} --fp16", title=f"Run dir {result}")
