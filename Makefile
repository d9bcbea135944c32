# dqn-ablations. `make study NAME=no_target` and `make test` each set up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed before the project so an already-available matching build is reused.
# GPU users get PyPI's CUDA build of this version; CPU-only users elsewhere can point
# TORCH_INDEX at PyTorch's CPU wheel index to skip the multi-GB CUDA download.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

NAME ?=
SEEDS ?=
STEPS ?=
DEVICE ?=
VARIANTS ?=
OUT ?=
QUICK ?=
FORCE ?=
STUDY_ARGS = $(if $(SEEDS),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) \
	$(if $(DEVICE),--device $(DEVICE)) $(if $(VARIANTS),--variants $(VARIANTS)) \
	$(if $(OUT),--out $(OUT)) $(if $(QUICK),--quick) $(if $(FORCE),--force)

.PHONY: help setup study figures report test regress bench lint clean all-studies

help:
	@echo "make study NAME=<study> [QUICK=1 SEEDS= STEPS= DEVICE= VARIANTS=a,b OUT= FORCE=1]"
	@echo "make test | regress | figures [NAME=] | report | bench | lint | clean"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

study: setup
	$(PY) -m dqn study $(NAME) $(STUDY_ARGS)

figures: setup
	$(PY) -m dqn figures $(NAME) $(if $(OUT),--out $(OUT))

report: setup
	$(PY) -m dqn report $(if $(OUT),--out $(OUT))

test: setup
	$(PY) -m pytest -m "not regress and not slow"

regress: setup
	$(PY) -m pytest -m regress

bench: setup
	$(PY) -m dqn bench $(if $(DEVICE),--device $(DEVICE))

lint: setup
	$(VENV)/bin/ruff check dqn tests

all-studies: setup
	$(PY) -m dqn study --all $(STUDY_ARGS)

clean:
	rm -rf results/quick .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
