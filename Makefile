# wildid developer commands. A clean clone with Python 3.11 needs only `make run` or `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test setup setup-dev sysdeps lint bench models screenshots package clean

# The app's environment: the project and its pinned dependencies.
$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	@touch $@

# The same plus test and lint tools.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# Debian packages some tests and tools need (Xvfb for real-window checks), installed when missing.
sysdeps:
	@bash .ci/sysdeps.sh

run: setup
	@bash .ci/sysdeps.sh app
	$(BIN)/wildid

test: setup-dev sysdeps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n 2 --dist loadfile --max-worker-restart=0

lint: setup-dev
	$(BIN)/ruff check wildid tests

bench: setup-dev
	$(BIN)/python -m tests.benchmarks

models:
	bash models/export/make_models.sh

screenshots: setup-dev sysdeps
	$(BIN)/python -m tests.screenshots

# The installable folder dist/wildid (PyInstaller, build.spec), built in a throwaway venv so the
# app's own never holds PyInstaller, then checked by running the built programs.
PACKAGE_VENV := build/package-venv
PYINSTALLER := pyinstaller==6.22.3
package:
	@test -x $(PACKAGE_VENV)/bin/python || $(PYTHON) -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/pip install --quiet -c $(LOCK) -e . $(PYINSTALLER)
	$(PACKAGE_VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist \
		--workpath build/pyinstaller build.spec
	$(PACKAGE_VENV)/bin/python -m tests.packaging.check_frozen dist/wildid

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
