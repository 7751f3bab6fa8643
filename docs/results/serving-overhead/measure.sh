#!/usr/bin/env bash
# The user-facing DCGAN ngf16 model against its raw generator, served from ONE tritonserver with the default
# `gandeploy repo` settings: perf_analyzer gRPC at concurrency 8, seeds-only --input-data for NAME, alternating
# rounds, plus the server's CPU time per served item (evaluation/bench/served_overhead.py). Run from the repository
# root:   bash docs/results/serving-overhead/measure.sh OUT_DIR
# before.json was measured the same way with gandeploy/serving/backends/gd_backend_common.py of commit 7fe0492
# (to_uint8 returning a transposed view), after.json with the contiguous to_uint8 (now gandeploy/wire.py, copied
# beside the backends as gd_wire.py).
set -euo pipefail
OUT=${1:-/tmp/serving-overhead}
PY=${PYTHON:-python}
EXPORT="$OUT/export/dcgan64-ngf16"
[ -f "$EXPORT/manifest.json" ] || $PY -c "from pathlib import Path; \
from gandeploy.evaluation.bench.suite import make_run; from gandeploy.export.pipeline import export_run; \
from gandeploy.models.dcgan import DCGANConfig; \
run = make_run(Path('$OUT/runs/dcgan64-ngf16'), 'dcgan', DCGANConfig(nz=100, ngf=16, ndf=16, image_size=64)); \
export_run(run, Path('$EXPORT'), fp16=False, max_batch=64)"
$PY -m gandeploy.evaluation.bench.served_overhead "$EXPORT" --out "$OUT/served_overhead.json" --rounds 3 --measurement-ms 2000
