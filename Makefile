# Visceral: the two commands of the README, and a few helpers.
#   make demo   -- create .venv, install, run the main job on built-in demo data
#   make test   -- create .venv, install with test extras (+ Debian packages when root), run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Debian packages the tests need: dciodvfy (DICOM IOD validator), chromium (renders the demo report).
APT_PACKAGES ?= dicom3tools chromium
APT_PROGRAMS ?= dciodvfy chromium

# The pure package must also run on 3D Slicer's own Python stacks: the interpreter and the versions each
# release bundles (Slicer's SuperBuild at tags v5.8.1 and v5.10.0).  Interpreters come from pyenv (or PATH).
find_python = $(or $(shell ls -d $$HOME/.pyenv/versions/$(1).*/bin/python 2>/dev/null | tail -1),$(shell command -v python$(1) 2>/dev/null))
SLICER_STACKS ?= 58 510
SLICER_PYTHON_58 ?= $(call find_python,3.9)
SLICER_PINS_58 ?= numpy==1.26.4 pydicom==2.4.4 SimpleITK==2.3.1
SLICER_PYTHON_510 ?= $(call find_python,3.12)
SLICER_PINS_510 ?= numpy==2.0.2 pydicom==2.4.4 SimpleITK==2.5.2

.PHONY: demo test test-slicer-stack bench venv system-deps clean
.PRECIOUS: .venv-slicer%/.installed

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

.venv-slicer%/.installed: pyproject.toml
	@test -n "$(SLICER_PYTHON_$*)" || { echo "the Python of Slicer stack $* not found: set SLICER_PYTHON_$*=/path/to/python"; exit 1; }
	$(SLICER_PYTHON_$*) -m venv .venv-slicer$*
	.venv-slicer$*/bin/python -m pip install -q $(SLICER_PINS_$*) "pytest>=7.4" "hypothesis>=6.80" "nibabel>=5.0" "dcm2niix>=1.0.20230411"
	.venv-slicer$*/bin/python -m pip install -q --no-deps -e .
	touch $@

# The logic tests on each Slicer stack (the MRML bridge and the Qt widget need slicer-core and PySide6, the metric oracles
# seg-metrics and surface-distance, the Dask executor the optional extra [dask], which Slicer does not bundle: main stack only).
test-slicer-stack: $(foreach s,$(SLICER_STACKS),.venv-slicer$(s)/.installed) system-deps
	@for s in $(SLICER_STACKS); do \
	  .venv-slicer$$s/bin/python -c "import sys, numpy, pydicom, SimpleITK; print('Slicer stack $$s: Python', sys.version.split()[0], 'numpy', numpy.__version__, 'pydicom', pydicom.__version__, 'SimpleITK', SimpleITK.Version_VersionString())" && \
	  .venv-slicer$$s/bin/python -m pytest -p no:cacheprovider --ignore-glob="Testing/test_slicer_*.py" --ignore=Testing/test_scale.py --ignore=Testing/test_evaluate_oracles.py -k "not slicer" || exit 1; \
	done

# Benchmarks are scripts, not tests: each runs Visceral and its peers side by side and prints a table.
bench: venv
	-$(BIN)/python -m pip install -q -e ".[bench]"
	-command -v gdcmanon >/dev/null 2>&1 || { [ "$$(id -u)" = "0" ] && apt-get install -y -qq libgdcm-tools >/dev/null; }
	@for f in bench/[a-z]*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .venv-slicer* .pytest_cache .hypothesis build *.egg-info
