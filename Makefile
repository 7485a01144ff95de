# Transfer Learning, hands-on: run `make` for the list of targets.
# Everything runs from a virtual environment in .venv, created on first use from the pinned
# versions in constraints.txt; nothing is installed outside it.

PYTHON  ?= python3
PROFILE ?= quick
SEED    ?= 0
PYTEST_ARGS ?=
LAB_ARGS ?=
# JupyterLab refuses to start as root (containers, CI) unless told it is deliberate.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PIP     := $(BIN)/python -m pip --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help env lab test figures exercises lint clean

help: ## list the targets
	@echo "Transfer Learning, hands-on"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  make %-9s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  variables: PROFILE=quick|full and SEED=0 (figures), PYTEST_ARGS (test),"
	@echo "             PYTHON=$(PYTHON) (creates .venv)"

env: $(STAMP) ## create .venv and install the pinned environment (only when something changed)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins or the package's dependencies change.
$(STAMP): constraints.txt pyproject.toml | $(BIN)/python
	@echo "Installing the course environment into $(VENV) (pinned by constraints.txt) ..."
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

lab: env ## open the notebooks in JupyterLab
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

test: env ## run every test, including executing each notebook in the quick profile
	$(BIN)/pytest $(PYTEST_ARGS)

figures: env ## execute every notebook in PROFILE and write its figures to slides/figures
	$(BIN)/python tools/run_notebooks.py --profile $(PROFILE) --seed $(SEED) \
		--output-dir build/executed/$(PROFILE) --figures-dir slides/figures

exercises: env ## write student versions (solutions replaced by prompts) to build/exercises
	$(BIN)/python tools/make_exercises.py --out build/exercises

lint: env ## check the code and the notebooks with ruff
	$(BIN)/ruff check .

clean: ## remove build outputs and tool caches (keeps .venv and the world cache .cache)
	rm -rf build .pytest_cache .ruff_cache
	find . \( -path ./.venv -o -path ./.git \) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
		-type d -print -exec rm -rf {} +
