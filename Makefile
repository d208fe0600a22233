# Two commands do everything on a fresh machine (see README.md):
#   make study   -- set up the environment, generate the built-in data, run the whole study -> reports/
#   make test    -- set up the environment, run the unit tests and the nbval notebook checks
# The virtual environment lives outside the repository, keyed by the dependency list,
# so clones and CI runs on the same machine share it.

PYTHON ?= python3
PROFILE ?= cpu
ONLY ?=
# Keyed by the dependency lists only (runtime, extras, groups; not the rest of pyproject.toml), so editing metadata
# keeps the venv.
DEPS_HASH := $(shell sed -n '/^dependencies = \[/,/^\]/p;/^\[project.optional-dependencies\]/,/^$$/p;/^\[dependency-groups\]/,/^$$/p' pyproject.toml | sha256sum | cut -c1-12)
VENV ?= $(HOME)/.cache/grl/venv-$(DEPS_HASH)
PY := $(VENV)/bin/python

.PHONY: env browser study quick test lint format docs unit bench notebooks portability

$(VENV)/.installed:
	@echo ">> creating $(VENV) (first time only: torch is a large download, ~2-5 min)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/pip install --quiet -e ".[slurm,real-data]" --group test --group lint --group docs
	touch $@

# Re-point the editable install at this checkout when it points elsewhere -- the venv may have been built from
# another clone. The check runs from / so that the current folder's grl/ does not answer for the venv's.
env: $(VENV)/.installed
	@(cd / && $(PY) -c "import grl, sys; sys.exit(not grl.__file__.startswith('$(CURDIR)/'))") 2>/dev/null || \
		$(VENV)/bin/pip install --quiet --no-deps --no-build-isolation -e .

# One run per core, one thread each (measured faster than one run on all cores; README "Time").
JOBS ?= $(shell nproc 2>/dev/null || echo 1)

study: env
	$(PY) -m grl reproduce --profile $(PROFILE) --jobs $(JOBS) $(if $(ONLY),--only $(ONLY),)

quick:
	$(MAKE) study PROFILE=quick

# Debian's Chromium for the real-browser checks (tests/test_browser.py; Playwright itself is a Python dependency).
# Where it cannot be installed, those tests fail and say so: they never skip.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo ">> installing Debian's chromium for tests/test_browser.py (first time only)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -q >/dev/null 2>&1 && \
		  $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } || \
		echo "warning: could not install chromium (apt-get); tests/test_browser.py will fail saying so"; }

test: env browser lint docs
	$(PY) -m pytest -q tests --nbval-lax notebooks -p no:cacheprovider

# ruff: lint and format check of the package, the tests and the notebooks' code cells (pyproject.toml [tool.ruff]).
lint: env
	$(VENV)/bin/ruff check grl tests notebooks
	$(VENV)/bin/ruff format --check grl tests notebooks

format: env
	$(VENV)/bin/ruff check --fix grl tests notebooks
	$(VENV)/bin/ruff format grl tests notebooks

# The documentation site (mkdocs.yml, docs/): --strict fails on any broken link or anchor (never with --quiet,
# which hides the warnings that --strict counts: a broken anchor then passes).
docs: env
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

unit: env
	$(PY) -m pytest -q tests

bench: env
	$(PY) -m grl.bench

# Re-execute the committed notebooks with the quick profile so their stored outputs match the code (for nbval).
notebooks: env
	$(PY) -m grl refresh-notebooks

# The nbval checks under the environments that make oneDNN / MKL / ATen pick other kernels, each on
# fresh runs (its own reports folder): the checked outputs must be identical (README, "What is identical where").
portability: env
	@set -e; for variant in "" "OMP_NUM_THREADS=1" "ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2" \
		"ONEDNN_MAX_CPU_ISA=SSE41" "ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2"; do \
		dir=$$(mktemp -d); echo ">> nbval with [$${variant:-default environment}], reports in $$dir"; \
		env $$variant GRL_REPORTS_DIR=$$dir $(PY) -m pytest -q --nbval-lax notebooks -p no:cacheprovider; \
		rm -rf $$dir; done
