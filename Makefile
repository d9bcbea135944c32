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
# adaptive seeds: stages of STAGE seeds per open variant, up to MAX_SEEDS (dqn.run.adaptive)
ADAPTIVE ?=
STAGE ?=
MAX_SEEDS ?=
# config overrides for every variant, e.g. SET="lr=3e-4 gamma=0.99" (results in their own folder)
SET ?=
# executors: EXECUTOR=ray submits every (variant, seed chunk) unit to a Ray cluster at ADDRESS
EXECUTOR ?=
ADDRESS ?=
SEED_CHUNK ?=
MAX_RETRIES ?=
GPUS_PER_UNIT ?=
STUDY_ARGS = $(if $(SEEDS),--seeds $(SEEDS)) $(if $(STEPS),--steps $(STEPS)) \
	$(if $(DEVICE),--device $(DEVICE)) $(if $(VARIANTS),--variants $(VARIANTS)) \
	$(if $(OUT),--out $(OUT)) $(if $(QUICK),--quick) $(if $(FORCE),--force) \
	$(if $(ADAPTIVE),--adaptive) $(if $(STAGE),--stage $(STAGE)) \
	$(if $(MAX_SEEDS),--max-seeds $(MAX_SEEDS)) $(foreach s,$(SET),--set $(s)) \
	$(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(ADDRESS),--address $(ADDRESS)) \
	$(if $(SEED_CHUNK),--seed-chunk $(SEED_CHUNK)) \
	$(if $(MAX_RETRIES),--max-retries $(MAX_RETRIES)) \
	$(if $(GPUS_PER_UNIT),--gpus-per-unit $(GPUS_PER_UNIT))
# the ray extra is installed only when something asks for Ray
RAY_SETUP = $(if $(filter ray,$(EXECUTOR)),setup-ray)

.PHONY: help setup setup-ray study sweep play atlas atlas-figures figures report test test-slow test-ray regress golden compare mutants bench lint \
	clean all-studies

help:
	@echo "make study NAME=<study> [QUICK=1 SEEDS= STEPS= DEVICE= VARIANTS=a,b OUT= FORCE=1]"
	@echo "  [ADAPTIVE=1 STAGE=10 MAX_SEEDS=100 SET=\"lr=3e-4 gamma=0.99\"]"
	@echo "  [EXECUTOR=ray ADDRESS=host:port SEED_CHUNK= MAX_RETRIES= GPUS_PER_UNIT=]"
	@echo "                      train a study's variants over many seeds (no NAME: list them)"
	@echo "make all-studies      every study in studies/ (same options)"
	@echo "make sweep GRID=\"lr=1e-3,3e-4 batch_size=32,64\" [SEEDS= STEPS= QUICK=1 SET=]"
	@echo "                      every grid point against the default agent (results/sweeps/)"
	@echo "make play NAME=<study> VARIANT= SEED= [GIF=out.gif RETRAIN=1]"
	@echo "                      one greedy episode of a trained seed, as a GIF"
	@echo "make figures [NAME=] [FORMAT=pdf,svg NO_SUBTITLE=1]"
	@echo "                      redraw figures and summary.csv from the CSVs"
	@echo "make atlas [RECIPES=a,b ENVS= ABLATIONS= QUICK=1 EXECUTOR=ray ...]"
	@echo "                      train what is missing of the atlas (atlas.toml), draw it"
	@echo "make atlas-figures [FORMAT=pdf,svg]"
	@echo "                      results/atlas/atlas.csv and atlas.png from the CSVs"
	@echo "make report           results/REPORT.md and docs/findings.md from the CSVs"
	@echo "make test             unit tests and the fast learning tier (CI)"
	@echo "make test-slow        longer fault-injection checks"
	@echo "make test-ray         the Ray executor on a local two-node cluster"
	@echo "make regress          every learning expectation at full seed counts"
	@echo "make compare OLD=<study or folder> NEW=<folder> [MARGIN=0.05]"
	@echo "                      paired-by-seed non-inferiority of a new training against an old"
	@echo "make golden           re-record the golden runs (tests/golden) after a NUMERICS bump"
	@echo "make mutants          plant each bug of tests/mutants and report which tier catches it"
	@echo "make bench [DEVICE=]  seed-steps per second against the seed count"
	@echo "make lint             ruff"
	@echo "make setup | setup-ray | clean"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

$(VENV)/.ray-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[dev,ray]'
	touch $@

setup-ray: $(VENV)/.ray-installed

study: setup $(RAY_SETUP)
	$(PY) -m dqn study $(NAME) $(STUDY_ARGS)

# a grid over config keys as a study: make sweep GRID="lr=1e-3,3e-4 batch_size=32,64" [SEEDS=]
GRID ?=
sweep: setup
	$(PY) -m dqn sweep $(foreach g,$(GRID),--grid $(g)) $(if $(SEEDS),--seeds $(SEEDS)) \
		$(if $(STEPS),--steps $(STEPS)) $(if $(DEVICE),--device $(DEVICE)) \
		$(if $(QUICK),--quick) $(if $(OUT),--out $(OUT)) $(foreach s,$(SET),--set $(s))

# one greedy episode of a trained seed as a GIF: make play NAME=batchnorm VARIANT=batchnorm SEED=12
VARIANT ?=
SEED ?=
GIF ?=
RETRAIN ?=
play: setup
	$(PY) -m dqn play $(NAME) $(VARIANT) $(SEED) $(if $(GIF),--out $(GIF)) \
		$(if $(RETRAIN),--retrain)

# figure export: FORMAT=pdf,svg (default png) NO_SUBTITLE=1 (no question or captions)
FORMAT ?=
NO_SUBTITLE ?=
comma := ,
# the atlas (atlas.toml): RECIPES=, ENVS=, ABLATIONS= pick a part (comma-separated)
RECIPES ?=
ENVS ?=
ABLATIONS ?=
atlas: setup $(RAY_SETUP)
	$(PY) -m dqn atlas $(if $(RECIPES),--recipes $(RECIPES)) $(if $(ENVS),--envs $(ENVS)) \
		$(if $(ABLATIONS),--ablations $(ABLATIONS)) $(if $(QUICK),--quick) \
		$(if $(DEVICE),--device $(DEVICE)) $(if $(OUT),--out $(OUT)) \
		$(if $(SEED_CHUNK),--seed-chunk $(SEED_CHUNK)) $(if $(EXECUTOR),--executor $(EXECUTOR)) \
		$(if $(ADDRESS),--address $(ADDRESS)) $(if $(MAX_RETRIES),--max-retries $(MAX_RETRIES)) \
		$(if $(GPUS_PER_UNIT),--gpus-per-unit $(GPUS_PER_UNIT))

atlas-figures: setup
	$(PY) -m dqn atlas-figures $(if $(OUT),--out $(OUT)) \
		$(foreach f,$(subst $(comma), ,$(FORMAT)),--format $(f))

figures: setup
	$(PY) -m dqn figures $(NAME) $(if $(OUT),--out $(OUT)) \
		$(foreach f,$(subst $(comma), ,$(FORMAT)),--format $(f)) $(if $(NO_SUBTITLE),--no-subtitle)

report: setup
	$(PY) -m dqn report $(if $(OUT),--out $(OUT))

test: setup
	$(PY) -m pytest -n 2 -m "not regress and not slow and not ray"

# longer checks kept out of make test (e.g. a writer killed at every one of its renames)
test-slow: setup
	$(PY) -m pytest -m slow

# a two-node Ray cluster on loopback, started by the tests themselves
test-ray: setup-ray
	$(PY) -m pytest -m ray tests/ray

regress: setup
	$(PY) -m pytest -m regress -rP

OLD ?=
NEW ?=
MARGIN ?=
compare: setup
	$(PY) -m dqn compare $(OLD) $(NEW) $(if $(MARGIN),--margin $(MARGIN))

golden: setup
	rm -rf tests/golden/results
	$(PY) -m dqn study tests/golden/golden.toml --out tests/golden/results --no-figures

mutants: setup
	$(PY) tests/mutants/harness.py $(if $(ONLY),--only $(ONLY))

bench: setup
	$(PY) -m dqn bench $(if $(DEVICE),--device $(DEVICE))

lint: setup
	$(VENV)/bin/ruff check dqn tests scripts

all-studies: setup $(RAY_SETUP)
	$(PY) -m dqn study --all $(STUDY_ARGS)

clean:
	rm -rf results/quick .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
