# RNN workbook. `make lab` opens the workbook, `make test` runs every test.
# Both create the environment (.venv, pinned by requirements.txt) when missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8888
START  ?= notebooks/01_sequences_and_rnns.ipynb
JOBS   ?= 3
# Notebooks under test run in FAST mode, one thread per worker. The starter labs (labs/)
# run in tests/labs/test_labs_in_sync.py: the generator executes each in a fresh kernel,
# and the cells that raise must be exactly those tagged raises-exception.
TEST_ENV := WORKBOOK_FAST=$${WORKBOOK_FAST:-1} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
            OPENBLAS_NUM_THREADS=1 MPLBACKEND=Agg PYDEVD_DISABLE_FILE_VALIDATION=1
# Tests run later labs against the exports earlier labs' solutions write.
TEST_EXPORTS := $(CURDIR)/.test-exports
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
         --nbval-sanitize-with tests/nbval_sanitize.cfg
# Open a browser only where there is a screen.
NO_BROWSER := $(if $(or $(DISPLAY),$(WAYLAND_DISPLAY),$(filter Darwin,$(shell uname -s))),,--no-browser)

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help env lab test test-ui lint format labs modules execute data grade check release bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v[:2] >= (3, 11) else "Python 3.11 or newer is needed, found %d.%d" % v[:2])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --user --name rnn-workbook --display-name "Python (RNN workbook)" >/dev/null
	touch $(STAMP)

env: $(STAMP) ## create the environment (.venv) with pinned versions

lab: $(STAMP) ## start JupyterLab at Chapter 1 (prints the URL)
	@echo "JupyterLab is starting; open the URL it prints below (Ctrl-C twice to stop)."
	$(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) --allow-root $(NO_BROWSER) \
	  --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/$(START)

test: $(STAMP) ## lint, unit tests, labs in sync, every notebook executed (nbval)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m utils.instructor exports --out "$(TEST_EXPORTS)" >/dev/null
	$(TEST_ENV) WORKBOOK_EXPORTS="$(TEST_EXPORTS)" $(BIN)/python -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder --durations=12 $(NBVAL) \
	  tests notebooks solutions $(PYTEST_ARGS)

test-ui: $(STAMP) ## open the notebooks in headless Chromium and check what renders
	$(BIN)/python -m utils.instructor exports --out "$(TEST_EXPORTS)" >/dev/null
	$(TEST_ENV) WORKBOOK_UI_TESTS=1 WORKBOOK_EXPORTS="$(TEST_EXPORTS)" $(BIN)/python -m pytest tests/ui -p no:xdist -rA $(PYTEST_ARGS)

lint: $(STAMP) ## ruff on code and notebooks
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## format code and notebooks with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

labs: $(STAMP) ## regenerate labs/ from solutions/
	$(TEST_ENV) $(BIN)/python -m utils.instructor labs

modules: $(STAMP) ## regenerate utils/models/ from the chapter cells tagged export:NAME
	$(BIN)/python -m utils.instructor modules

execute: $(STAMP) ## store fresh outputs: make execute NB="notebooks/01_*.ipynb"
	@test -n "$(NB)" || { echo 'usage: make execute NB="notebooks/01_sequences_and_rnns.ipynb solutions/..."'; exit 2; }
	$(BIN)/python -m utils.instructor execute $(NB)

data: $(STAMP) ## download every dataset into data/ (honours WORKBOOK_MIRROR)
	$(BIN)/python -m utils.data fetch

grade: $(STAMP) ## grade submissions: make grade SUBMISSIONS=dir [OUT=grades] [SCHEDULER=tcp://host:8786]
	@test -n "$(SUBMISSIONS)" || { echo 'usage: make grade SUBMISSIONS=<dir> [OUT=<dir>] [SCHEDULER=tcp://host:8786]'; exit 2; }
	$(BIN)/python -m utils.instructor grade "$(SUBMISSIONS)" --out "$(or $(OUT),grades)" $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(ALLOW_UNISOLATED),--allow-unisolated)

check: $(STAMP) ## run your lab's visible tests as the grader does: make check LAB=labs/lab01_rnn_from_scratch.ipynb
	@test -n "$(LAB)" || { echo 'usage: make check LAB=labs/<lab>.ipynb'; exit 2; }
	$(BIN)/python -m utils.instructor.check "$(LAB)" $(if $(ALLOW_UNISOLATED),--allow-unisolated)

release: $(STAMP) ## build the student bundle without solutions: make release [OUT=release]
	$(BIN)/python -m utils.instructor release --out "$(or $(OUT),release)"

bench: $(STAMP) ## measure run times, accuracy targets and grading throughput
	MPLBACKEND=Agg $(BIN)/python -m bench

clean: ## remove the environment and generated files (keeps the data cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache grades release checkpoints tests/ui/screenshots .test-exports
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
