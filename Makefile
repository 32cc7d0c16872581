# Visceral: the two commands of the README, and a few helpers.
#   make demo   -- create .venv, install, run the main job on built-in demo data
#   make test   -- create .venv, install with test extras (+ Debian packages when root), run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests need: dciodvfy (DICOM IOD validator), chromium (renders the demo report).
APT_PACKAGES ?= dicom3tools chromium
APT_PROGRAMS ?= dciodvfy chromium

# The pure package must also run on 3D Slicer 5.8's own Python stack (Python 3.9 and the versions it bundles).
SLICER_PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/3.9.*/bin/python 2>/dev/null | tail -1 || true)$(if $(shell ls -d $$HOME/.pyenv/versions/3.9.* 2>/dev/null),,$(shell command -v python3.9 2>/dev/null))
SLICER_VENV ?= .venv-slicer58
SLICER_PINS ?= numpy==1.26.4 pydicom==2.4.4 SimpleITK==2.3.1

.PHONY: demo test test-slicer-stack bench venv system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT_PROGRAMS); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages: $(APT_PACKAGES)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	  else \
	    echo "missing programs:$$missing -- install with: sudo apt-get install $(APT_PACKAGES)"; \
	  fi; \
	fi

demo: venv
	$(BIN)/visceral demo visceral-demo

test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	$(MAKE) test-slicer-stack

$(SLICER_VENV)/.installed: pyproject.toml
	@test -n "$(SLICER_PYTHON)" || { echo "Python 3.9 (3D Slicer 5.8's) not found: set SLICER_PYTHON=/path/to/python3.9"; exit 1; }
	$(SLICER_PYTHON) -m venv $(SLICER_VENV)
	$(SLICER_VENV)/bin/python -m pip install -q --upgrade pip
	$(SLICER_VENV)/bin/python -m pip install -q $(SLICER_PINS) "pytest>=7.4" "hypothesis>=6.80" "nibabel>=5.0" "dcm2niix>=1.0.20230411"
	$(SLICER_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

# The logic tests on Slicer 5.8's stack (the MRML bridge and the Qt widget need slicer-core and PySide6: main stack only).
test-slicer-stack: $(SLICER_VENV)/.installed system-deps
	$(SLICER_VENV)/bin/python -c "import sys, numpy, pydicom, SimpleITK; print('Slicer 5.8 stack: Python', sys.version.split()[0], 'numpy', numpy.__version__, 'pydicom', pydicom.__version__, 'SimpleITK', SimpleITK.Version_VersionString())"
	$(SLICER_VENV)/bin/python -m pytest -p no:cacheprovider --ignore=Testing/test_slicer_bridge.py --ignore=Testing/test_slicer_module.py -k "not slicer"

# Benchmarks are scripts, not tests: each runs Visceral and its peers side by side and prints a table.
bench: venv
	-$(BIN)/python -m pip install -q -e ".[bench]"
	-command -v gdcmanon >/dev/null 2>&1 || { [ "$$(id -u)" = "0" ] && apt-get install -y -qq libgdcm-tools >/dev/null; }
	@for f in bench/[a-z]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(SLICER_VENV) .pytest_cache .hypothesis build *.egg-info
