#!/usr/bin/env bash
# One run of a shipped recipe as a user runs it (default threads, nothing else on the machine), timed: writes
# alone.json (wall seconds + the run's own quality.json) into OUT.
# Usage: bash docs/results/quality/time_alone.sh RECIPE OUT
#   e.g. bash docs/results/quality/time_alone.sh biggan-digits docs/results/quality/tuning-biggan
set -euo pipefail
recipe=${1:?usage: time_alone.sh RECIPE OUT (RECIPE: a name in training/recipes, e.g. biggan-digits)}
repo=$(cd "$(dirname "$0")/../../.." && pwd)
out=$(cd "${2:?usage: time_alone.sh RECIPE OUT}" && pwd)
work=$(mktemp -d)
cd "$repo"
test -f "training/recipes/$recipe.toml" || { echo "no recipe training/recipes/$recipe.toml" >&2; exit 2; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)  # another CPU: other timings, other runs
t0=$(date +%s)
.venv/bin/gandeploy train --recipe "training/recipes/$recipe.toml" --out "$work/run" >"$work/train.log" 2>&1
t1=$(date +%s)
quality=$(cat "$work/run/quality.json" 2>/dev/null || echo null)  # null: the run measured nothing
cat >"$out/alone.json" <<JSON
{"format": "gandeploy.timings/1", "commit": "$(git rev-parse HEAD)", "cores": $(nproc), "cpu": "$cpu",
 "command": "gandeploy train --recipe training/recipes/$recipe.toml", "seconds": $((t1 - t0)),
 "load_before": "$load", "quality": $quality}
JSON
rm -rf "$work"
echo "wrote $out/alone.json"
