# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test browser perf-libs demo bench gpu-bench modes quality clean

# (Re)build the virtual environment when pyproject.toml changes. torch==2.13.0 comes first so pip takes
# the CPU wheel that lies on local disk instead of resolving a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

# The browser test of `gandeploy ui` drives Debian's chromium + chromium-driver, the perf_analyzer tests need
# Debian's libb64-0d (and libcudart.so.12, pip extra "bench", installed with the venv). Without them (not
# root, no apt) those tests skip with the reason; GANDEPLOY_STRICT=1 (.ci/run) turns such a skip into a failure.
test: install browser perf-libs
	$(PY) -m pytest $(PYTEST_ARGS)

APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
		( ($(APT_INSTALL) chromium chromium-driver) \
		>/dev/null 2>&1 || echo "warning: could not install chromium + chromium-driver; the browser test will skip" )

perf-libs:
	@dpkg -s libb64-0d >/dev/null 2>&1 || ( ($(APT_INSTALL) libb64-0d) >/dev/null 2>&1 || \
		echo "warning: could not install libb64-0d; the perf_analyzer tests will skip" )

demo: install
	$(VENV)/bin/gandeploy demo

# perf_analyzer needs Debian's libb64-0d and libcudart.so.12 (pip extra "bench"), even on a CPU machine.
bench: install perf-libs
	$(VENV)/bin/gandeploy bench-suite

# The GPU rows (DCGAN/CycleGAN training steps, torch FP16 vs FP32 per family, SR megapixels/s) in one JSON; on a
# machine without an NVIDIA GPU it says so and stops. Not yet run on a GPU.
gpu-bench: install
	$(PY) -m gandeploy.evaluation.bench.gpu_bench --out reports/gpu-bench.json

# The mode-collapse table (ring8 / grid25, 6 rows x 5 seeds, two runs at a time): about 45 min on 2 cores.
modes: install
	$(VENV)/bin/gandeploy mode-table --jobs 2

# The quality table (every offline image recipe x held-out seeds 5-9, each family's measure + FID/KID, beside
# issue 27's aims): docs/results/quality/quality.md. Hours on 2 cores; pick recipes with QUALITY_ARGS="--recipes cgan-digits".
quality: install
	$(VENV)/bin/gandeploy quality-table --held-out --jobs 2 --out docs/results/quality $(QUALITY_ARGS)

# Removes the environment and everything generated (runs, data, exports, repositories, demo pictures).
clean:
	rm -rf $(VENV) training/runs training/data demo .pytest_cache
	find export model_repository -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
