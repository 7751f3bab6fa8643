#!/usr/bin/env bash
# Wall times the README quotes, on an idle machine: `make install` + `make demo` in a fresh clone of this
# repository, then the CGAN digits recipe. Writes timings.json and demo-summary.json into OUT (default: this
# folder).
# Usage: bash docs/results/timings/measure.sh [OUT]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../.." && pwd)
out=$(cd "${1:-$(dirname "$0")}" && pwd)
work=$(mktemp -d)
git clone -q "$repo" "$work/clone"
cd "$work/clone"
t0=$(date +%s); make install >"$work/install.log" 2>&1
t1=$(date +%s); make demo >"$work/demo.log" 2>&1
t2=$(date +%s); .venv/bin/gandeploy train --recipe training/recipes/cgan-digits.toml --out "$work/cgan" \
    >"$work/cgan.log" 2>&1
t3=$(date +%s)
cat >"$out/timings.json" <<JSON
{"format": "gandeploy.timings/1", "commit": "$(git rev-parse HEAD)", "cores": $(nproc),
 "make_install_s": $((t1 - t0)), "make_demo_s": $((t2 - t1)), "cgan_digits_recipe_s": $((t3 - t2)),
 "demo_stages": $(cat demo/summary.json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([{"stage": s["stage"], "seconds": s["seconds"]} for s in d]))' 2>/dev/null || echo null),
 "cgan_quality": $(cat "$work/cgan/quality.json" 2>/dev/null || echo null)}
JSON
cp demo/summary.json "$out/demo-summary.json"  # every demo stage's seconds and figures
echo "wrote $out/timings.json and $out/demo-summary.json (the demo's pictures: $work/clone/demo)"
