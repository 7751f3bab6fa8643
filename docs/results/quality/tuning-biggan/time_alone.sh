#!/usr/bin/env bash
# One run of the shipped BigGAN recipe as a user runs it (two threads, nothing else on the machine), timed:
# writes alone.json (wall seconds + the run's own quality.json) into OUT (default: this folder).
# Usage: bash docs/results/quality/tuning-biggan/time_alone.sh [OUT]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../../.." && pwd)
out=$(cd "${1:-$(dirname "$0")}" && pwd)
work=$(mktemp -d)
cd "$repo"
load=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
.venv/bin/gandeploy train --recipe training/recipes/biggan-digits.toml --out "$work/run" >"$work/train.log" 2>&1
t1=$(date +%s)
cat >"$out/alone.json" <<JSON
{"format": "gandeploy.timings/1", "commit": "$(git rev-parse HEAD)", "cores": $(nproc),
 "command": "gandeploy train --recipe training/recipes/biggan-digits.toml", "seconds": $((t1 - t0)),
 "load_before": "$load", "quality": $(cat "$work/run/quality.json")}
JSON
rm -rf "$work"
echo "wrote $out/alone.json"
