"""``gandeploy evaluate TARGET``: FID / KID / precision-recall / density-coverage of a run, an export on any
backend, or a served model (per class, per InfoGAN code, both directions of an image-to-image run);
``--compare`` puts several backends' distributions side by side."""

from __future__ import annotations

from pathlib import Path

import click

from gandeploy.cli.options import OutPath, report_outputs
from gandeploy.metrics.features import FEATURES
from gandeploy.formats import FORMATS

BACKEND_CHOICES = [k for k in FORMATS if k != "triton-ensemble"]  # the format table's backends


@click.command("evaluate")
@click.argument("target")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default=None,
              help="Backend for an export dir [default: onnxruntime; a run dir: torch].")
@click.option("--url", default=None, help="HOST:PORT of the Triton server (a served model name as TARGET, or "
                                          "--backend triton).")
@click.option("--protocol", type=click.Choice(["http", "grpc"]), default="grpc", show_default=True)
@click.option("--generator", default=None,
              help="Run dirs: which generator, as for 'gandeploy export --generator' (G, G_ema; CycleGAN G_A = A→B, "
                   "G_B = B→A) [default: G_ema if kept, else G; an image-to-image run: both directions].")
@click.option("--real", default=None, help="Real data set to compare with, held-out split [default: the run's].")
@click.option("--n", "n", type=int, default=10_000, show_default=True, help="Generated samples (seeds seed..seed+n-1).")
@click.option("--seed", type=int, default=0, show_default=True, help="First seed.")
@click.option("--metric", "metric", default=None,
              help="psnr,ssim: super-resolution quality against the original pictures, beside bicubic; fid: the "
                   "distribution suite (FID, KID, precision/recall, density/coverage) [default: psnr,ssim for "
                   "generators that upscale a picture, else fid].")
@click.option("--features", type=click.Choice(list(FEATURES)), default=None,
              help="Feature space [default: pixels for point data, digits for digit images, else inception].")
@click.option("--inception-weights", type=click.Path(dir_okay=False), default=None,
              help="Path to the FID Inception weights (weights-inception-2015-12-05-6726825d.pth).")
@click.option("--kid-subsets", type=int, default=100, show_default=True)
@click.option("--kid-subset-size", type=int, default=1000, show_default=True)
@click.option("--compare", "compare_backends", default=None,
              help="Comma-separated backends of an export dir to compare on the same seeds, first = reference, "
                   "e.g. onnxruntime,onnxruntime-fp16,tensorrt,triton.")
@click.option("--compare-runs", "compare_runs", default=None,
              help="Comma-separated super-resolution run (or export) dirs to show beside TARGET: sr-crops.png of "
                   "bicubic | TARGET | each run | original crops of the held-out pictures, and sr-crops.json of "
                   "per-panel and whole-picture PSNR-Y.")
@click.option("--json", "json_file", type=OutPath(), default=None,
              help="Also write the JSON result here.")
@click.option("--report", "report_dir", type=OutPath(directory=True), default=None,
              help="Folder for evaluate.{json,md,png} [default: reports/evaluate/<target name>-<source>, the "
                   "source being run, export-<backend>, served or compare, so no two of them share a report].")
@click.option("--data-root", type=click.Path(file_okay=False), default=None, help="Data folder [default: training/data].")
def evaluate(target: str, backend: str | None, url: str | None, protocol: str, generator: str | None,
             real: str | None, n: int, seed: int, metric: str | None, features: str | None, inception_weights: str | None, kid_subsets: int, kid_subset_size: int,
             compare_backends: str | None, compare_runs: str | None, json_file: Path | None, report_dir: Path | None,
             data_root: str | None) -> None:
    """Score TARGET's samples against held-out real data.

    \b
    TARGET is a run dir, an export dir (with --backend), or a served model name (with --url):
      gandeploy evaluate training/runs/cgan-digits --n 2000
      gandeploy evaluate export/cgan-digits --backend onnxruntime-fp16 --json fp16.json
      gandeploy evaluate cgan-digits --url 127.0.0.1:8001 --real digits
      gandeploy evaluate export/cgan-digits --compare onnxruntime,onnxruntime-fp16
      gandeploy evaluate training/runs/cyclegan-digits2inverted --generator G_B
      gandeploy evaluate export/esrgan-photos --backend onnxruntime-fp16 --metric psnr,ssim
      gandeploy evaluate training/runs/srresnet-photos --compare-runs training/runs/esrgan-photos --report docs
    """
    from gandeploy.errors import UserInputError
    from gandeploy.evaluation import eval_report
    from gandeploy.evaluation.compare import compare
    from gandeploy.evaluation.evaluate import EvalConfig
    from gandeploy.evaluation.evaluate import evaluate as run_evaluate
    from gandeploy.evaluation.sr_eval import SRResult, summary_line, write_sr

    if kid_subsets < 1 or kid_subset_size < 2:
        raise UserInputError("--kid-subsets must be >= 1 and --kid-subset-size >= 2.")
    metrics = tuple(m.strip().lower() for m in metric.split(",") if m.strip()) if metric else None
    cfg = EvalConfig(n=n, seed=seed, real=real, features=features, kid_subsets=kid_subsets,
                     kid_subset_size=kid_subset_size, inception_weights=inception_weights, data_root=data_root,
                     metrics=metrics)
    out = report_dir or default_report(target, backend, compare_backends is not None)
    if compare_runs:
        if compare_backends or backend or url or generator:
            raise UserInputError("--compare-runs compares run (or export) dirs on their default backend; drop "
                                 "--compare, --backend, --url and --generator.")
        from gandeploy.evaluation.sr_compare import compare_sr, comparison_lines, write_comparison

        comp = compare_sr([target, *(r.strip() for r in compare_runs.split(",") if r.strip())], cfg)
        for line in comparison_lines(comp):
            click.echo(line)
        report_outputs(write_comparison(comp, out, json_file), None)
        return
    if compare_backends:
        if generator is not None:
            raise UserInputError("--generator does not apply to --compare: an export dir holds one generator "
                                 "(export the other with 'gandeploy export RUN_DIR --generator KEY').")
        if not Path(target).is_dir():
            raise UserInputError(f"--compare needs an export dir as TARGET, got '{target}'.")
        comp = compare(target, [b.strip() for b in compare_backends.split(",") if b.strip()], cfg=cfg, url=url,
                       protocol=protocol)
        for row in comp.rows:
            v, r = row.get("vs_reference"), row["vs_real"]
            extra = (f"; vs {comp.reference}: FID {v['fid']:.4g}, KID {v['kid_mean']:.3g} ± {v['kid_std']:.2g}, "
                     f"max abs {row['max_abs_vs_reference']:.3g}") if v else " (reference)"
            click.echo(f"{row['backend']:>18}: FID {r['fid']:.4g}, KID {r['kid_mean']:.3g} ± {r['kid_std']:.2g}"
                       f"{extra}")
        for key, why in comp.skipped.items():
            click.echo(f"{key:>18}: skipped ({why})")
        report_outputs(eval_report.write_compare(comp, out, json_file), f"gandeploy parity {target}")
        return
    result = run_evaluate(target, backend, cfg=cfg, url=url, protocol=protocol, generator=generator)
    if isinstance(result, SRResult):
        click.echo(summary_line(result))
        is_run = Path(target).is_dir() and not (Path(target) / "manifest.json").is_file()
        report_outputs(write_sr(result, out, json_file), f"gandeploy export {target}" if is_run else None)
        return
    for res in (result, result.reverse):
        if res is None:
            continue
        s = res.summary
        what = f"{s['direction']}, {s['generator']}: " if s.get("direction") else ""
        click.echo(f"{what}{s['backend']} · {s['features']} features · {s['n']} generated vs {s['n_real']} real: "
                   f"FID {s['fid']:.4g}, KID {s['kid_mean']:.4g} ± {s['kid_std']:.2g}, precision "
                   f"{s['precision']:.3f}, recall {s['recall']:.3f}, density {s['density']:.3f}, coverage "
                   f"{s['coverage']:.3f}")
        if s.get("paired"):  # a paired set's own measures against its known targets
            click.echo(f"  against the true targets: {s['paired']['line']}")
    if result.reverse_skipped:
        click.echo(f"  other direction not scored: {result.reverse_skipped}")
    for row in result.per_class:
        click.echo(f"  class {row['name']:>4}: FID {row['fid']:.4g}, KID {row['kid_mean']:.3g}, "
                   f"precision {row['precision']:.3f}, recall {row['recall']:.3f}")
    if result.code_mapping is not None:
        click.echo(f"  code → digit mapping {result.code_mapping['mapping']}: "
                   f"{result.code_mapping['accuracy']:.1%} of samples judged as their code's digit")
    for row in result.per_code:
        click.echo(f"  code {row['code']:>2} → {row['name']:>4} ({row['share_judged_as_mapped']:.0%} judged so, "
                   f"{row['n_fake']} samples): FID {row['fid']:.4g}, KID {row['kid_mean']:.3g}, precision "
                   f"{row['precision']:.3f}, recall {row['recall']:.3f}")
    next_cmd = f"gandeploy evaluate {target} --compare onnxruntime,onnxruntime-fp16" if (Path(target) / "manifest.json").is_file() \
        else "gandeploy export " + target if Path(target).is_dir() else None
    report_outputs(eval_report.write_eval(result, out, json_file), next_cmd)


def default_report(target: str, backend: str | None, comparing: bool) -> Path:
    """``reports/evaluate/<name>-<source>``: a run dir, an export on a backend, a served model and a comparison
    of the same name each get their own folder (an export and the model served from it share the name)."""
    path = Path(target)
    if comparing:
        source = "compare"
    elif not path.is_dir():
        source = "served"
    elif (path / "manifest.json").is_file():
        source = f"export-{backend or 'onnxruntime'}"
    else:
        source = "run"
    return Path("reports/evaluate") / f"{path.name or 'target'}-{source}"
