# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test demo bench clean

# (Re)build the virtual environment when pyproject.toml changes. torch==2.13.0 comes first so pip takes
# the CPU wheel that lies on local disk instead of resolving a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/gandeploy demo

bench: install
	$(VENV)/bin/gandeploy bench-suite

clean:
	rm -rf $(VENV) training/runs export/runs serving/generated model_repository/generated .pytest_cache
