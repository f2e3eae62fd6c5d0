# Development tasks for runtime.threading.
#
#   make test                  venv + lint + typecheck + pytest (the one command to run)
#   make test PYTHON=python3.12  same, in .venv-3.12 built with that interpreter
#
# The virtualenv directory is derived from the interpreter: the default `python3`
# uses .venv, any other PYTHON uses .venv-<major>.<minor>.

PYTHON ?= python3

ifeq ($(PYTHON),python3)
VENV ?= .venv
else
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV ?= .venv-$(or $(PYVER),$(notdir $(PYTHON)))
endif

VENV_PY := $(VENV)/bin/python
STAMP   := $(VENV)/.stamp-dev
PYTEST_ARGS ?=
ARGS ?=

LINT_PATHS      := $(wildcard src tests benchmarks examples)
TYPECHECK_PATHS := src $(wildcard tests/typecheck)
BENCH_SCRIPTS   := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: venv lint typecheck pytest test bench demo clean

venv: $(STAMP)

# Re-runs only when the venv is missing or pyproject.toml changed.
$(STAMP): pyproject.toml
	@test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip
	$(VENV_PY) -m pip install --quiet -e '.[dev]'
	@touch $@

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict $(TYPECHECK_PATHS)

# pytest exit code 5 means "no tests collected": accepted only while the
# suite has no test files at all.
pytest: $(STAMP)
	@rc=0; $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ] && [ -z "$$(find tests -name 'test_*.py' 2>/dev/null)" ]; then \
		echo "note: the test suite is empty (pytest exit code 5), treated as success"; rc=0; \
	fi; \
	exit $$rc

test: venv lint typecheck
	@$(MAKE) --no-print-directory pytest PYTHON='$(PYTHON)' VENV='$(VENV)'

bench: $(STAMP)
ifeq ($(BENCH_SCRIPTS),)
	@echo "no benchmarks/bench_*.py scripts found"
else
	@set -e; for f in $(BENCH_SCRIPTS); do \
		echo "== $$f"; $(VENV_PY) $$f; \
	done
endif

demo: $(STAMP)
	$(VENV_PY) examples/checksum.py $(ARGS)

clean:
	rm -rf .venv .venv-* build dist src/*.egg-info *.egg-info \
		.pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
