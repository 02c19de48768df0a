# Two entry points: `make demo` (quickstart: data -> train -> frozen vs adaptive MPC -> report)
# and `make test` (the CI suite). Both create the virtualenv they need.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKDIR ?= workdirs/quickstart

.PHONY: venv demo test test-slow benchmark clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/python experiments/quickstart.py --config.eval.episodes=20 --workdir=$(WORKDIR)

# Two workers, one test file each (module fixtures stay shared; test compilation is single-threaded, so the
# 2 cores compile two files at once).
test: venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15 tests

test-slow: venv
	$(BIN)/python -m pytest -q -m slow tests

benchmark: venv
	$(BIN)/python experiments/benchmark_envs.py
	$(BIN)/python experiments/benchmark.py --config.eval.replans=5 --config.plan.gd.steps=100

clean:
	rm -rf $(VENV) .jax_cache
