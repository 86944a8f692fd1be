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

bench: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_engine.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_gui.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_graph.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_surface_view.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_launch.py
	$(PY) benchmarks/bench_formula.py
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_surface3d.py

# ruff over the whole tree (its settings are in pyproject.toml); a finding fails the build.
lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
