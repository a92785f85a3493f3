# The two commands of the README. Both set up .venv on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SUITE  := $(VENV)/bin/suite
STAMP  := $(VENV)/.installed
# torch first, pinned: on this machine 2.13.0 is a CPU build on local disk, where a plain
# requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
RESULTS ?= results

.PHONY: run test setup clean bench

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,cluster]'
	touch $(STAMP)

setup: $(STAMP)

# The default benchmark: DLRM-RMC1 (small scale) on torch-cpu, Offline then Server, on generated data.
# Both targets come from an untimed probe of this machine (Offline's is auto by default; Server's
# would be the rule table's 300 QPS, which a busy 2-core machine cannot hold).
run: setup
	$(SUITE) run --model dlrm-rmc1 --backend torch-cpu --scenario offline --output $(RESULTS) --overwrite
	$(SUITE) run --model dlrm-rmc1 --backend torch-cpu --scenario server --target-qps auto --output $(RESULTS) --overwrite
	$(SUITE) summary $(RESULTS)

# Lint and types first (seconds), then the tests.
test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/offline_efficiency.py
	$(PY) benchmarks/harness_ceiling.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
