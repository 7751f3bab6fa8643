#!/usr/bin/env bash
# INT8 vs FP32 on ONNX Runtime (CPU): the verdict (manifest.json "int8") and throughput (bench.json) of
# DCGAN 64x64 (default ngf 64, untrained weights + BatchNorm statistics of random inputs), CGAN digits (300
# training steps) and CycleGAN 256x256 (ngf 64, 9 blocks, untrained). Run from the repository root:
#   bash docs/results/int8/measure.sh OUT_DIR
# Measured one model at a time; the bench threads are set by OMP_NUM_THREADS (default 2).
set -euo pipefail
OUT=${1:-/tmp/int8-figures}
THREADS=${OMP_NUM_THREADS:-2}
PY=${PYTHON:-python}
mkdir -p "$OUT"
untrained() {  # an untrained run dir of MODEL at its default config (tests' make_run_dir)
  $PY -c "import sys; sys.path.insert(0, 'tests/export'); from pathlib import Path; \
from export_helpers import make_run_dir; from gandeploy.registry import get_model; \
from dataclasses import asdict; s = get_model('$1'); make_run_dir(Path('$2'), '$1', **asdict(s.config_cls()))"
}
[ -d "$OUT/dcgan64" ] || untrained dcgan "$OUT/dcgan64"
[ -d "$OUT/cyclegan256" ] || untrained cyclegan "$OUT/cyclegan256"
[ -d "$OUT/cgan-digits" ] || OMP_NUM_THREADS=1 $PY -m gandeploy.cli train cgan digits --steps 300 --out "$OUT/cgan-digits"
for run in dcgan64 cgan-digits; do
  $PY -m gandeploy.cli export "$OUT/$run" --out "$OUT/export/$run" --int8 --force
done
# --min-size 32x32: the default 8x8 minimum put one untrained draw past the FP32 check (see README.md here)
$PY -m gandeploy.cli export "$OUT/cyclegan256" --out "$OUT/export/cyclegan256" --int8 --force --opt-size 256x256 --min-size 32x32
for run in dcgan64 cgan-digits; do
  (cd "$OUT" && OMP_NUM_THREADS=$THREADS $PY -m gandeploy.cli bench "export/$run" --backends onnxruntime,onnxruntime-int8 \
     --batch-sizes 1,16 --threads "$THREADS")
done
(cd "$OUT" && OMP_NUM_THREADS=$THREADS $PY -m gandeploy.cli bench export/cyclegan256 --backends onnxruntime,onnxruntime-int8 \
   --batch-sizes 1 --size 256x256 --threads "$THREADS")
