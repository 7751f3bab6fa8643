#!/usr/bin/env bash
# The SR row of the INT8 table: SRVGGNetCompact (Real-ESRGAN's compact net, default config: 64 features,
# 16 convs, x4), untrained weights, exported with --int8 at 256x256 (-> 1024x1024), its PSNR verdict
# (manifest.json "int8") and INT8 vs FP32 ONNX Runtime throughput (bench.json). Run from the repository root:
#   bash docs/results/int8/measure_sr.sh OUT_DIR
# The bench threads are set by OMP_NUM_THREADS (default 2); the load average at the start and end is printed.
set -euo pipefail
OUT=${1:-/tmp/int8-figures}
THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-python}
mkdir -p "$OUT"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -d "$OUT/srvgg256" ] || $PY -c "import sys; sys.path.insert(0, 'tests/export'); from pathlib import Path; \
from export_helpers import make_run_dir; from gandeploy.registry import get_model; \
from dataclasses import asdict; s = get_model('srvgg'); make_run_dir(Path('$OUT/srvgg256'), 'srvgg', **asdict(s.config_cls()))"
$PY -m gandeploy.cli export "$OUT/srvgg256" --out "$OUT/export/srvgg256" --int8 --force --opt-size 256x256
(cd "$OUT" && OMP_NUM_THREADS=$THREADS $PY -m gandeploy.cli bench export/srvgg256 --backends onnxruntime,onnxruntime-int8 \
   --batch-sizes 1 --size 256x256 --threads "$THREADS" --reps 5 --warmup 1)
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
