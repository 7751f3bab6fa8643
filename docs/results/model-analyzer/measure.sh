#!/usr/bin/env bash
# The serving-knob grid of `make bench` (DCGAN 64x64 ngf16, random init; CPU instances 1,2 x ONNX Runtime
# threads 1,2 x batcher delay 0,500 us; concurrency 1 and 8) by Triton Model Analyzer in local launch mode,
# exactly as `gandeploy bench-suite` runs it (evaluation/model_analyzer.run_model_analyzer). Run from the
# repository root:   bash docs/results/model-analyzer/measure.sh OUT_DIR
# Writes OUT_DIR/model_analyzer.json and OUT_DIR/model-analyzer/ (config.yaml, input-data.json, its output).
set -euo pipefail
OUT=${1:-/tmp/ma-figures}
PY=${PYTHON:-python}
mkdir -p "$OUT"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
$PY - "$OUT" <<'PYEOF'
import sys
from pathlib import Path
from gandeploy.evaluation.bench.knobs import grid
from gandeploy.evaluation.bench.model_analyzer import analyzer_table, run_model_analyzer
from gandeploy.evaluation.bench.suite import make_run
from gandeploy.export.pipeline import export_run
from gandeploy.models.dcgan import DCGANConfig
out = Path(sys.argv[1])
export = out / "export" / "dcgan64-ngf16"
if not (export / "manifest.json").is_file():
    run = make_run(out / "runs" / "dcgan64-ngf16", "dcgan", DCGANConfig(nz=100, ngf=16, ndf=16, image_size=64))
    export_run(run, export, max_batch=64)
result = run_model_analyzer(export, grid((1, 2), (1, 2), (0, 500)), out)
print(analyzer_table("DCGAN 64x64 ngf16", result))
PYEOF
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
