# `make run` opens the app, `make test` runs every test, `make lint` runs ruff; each builds .venv
# from nothing when needed. `make test` also installs (as root, only what is missing) Xvfb and
# Mesa, on which the 3-D view's tests draw for real (.ci/gl-deps).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean gl-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py

gl-deps:
	bash .ci/gl-deps

test: $(STAMP) gl-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

# Every script in benchmarks/ (each prints its figures and ratios against a plain torch loop);
# the 3-D view's starts its own Xvfb, the others draw offscreen.
bench: $(STAMP)
	set -e; for script in benchmarks/bench_*.py; do \
		echo "== $$script"; \
		if [ "$$script" = benchmarks/bench_surface3d.py ]; then $(PY) $$script; \
		else QT_QPA_PLATFORM=offscreen $(PY) $$script; fi; \
	done

# ruff over the whole tree (its settings are in pyproject.toml); a finding fails the build.
lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
