# One-command set-up: every target creates .venv when missing and installs the
# project with the pinned versions from constraints.txt. Then every command is
# .venv/bin/p2pbot COMMAND (`make install` sets up .venv without running anything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint bench sim clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/p2pbot demo $(ARGS)

# three workers (pytest-xdist) on a 2-core machine: the suite is mostly CPU-bound, but its
# real processes and real Prometheus wait on real time, and the third worker uses the core
# they leave idle (four: 113 s against three's 106 s, back to back); tests/conftest.py deals
# the longest runs to the workers' shares; the tests are isolated (ports chosen by the system,
# files in tmp_path, a runtime folder per worker); see docs/testing.md
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 3 --dist worksteal $(ARGS)

# the edit loop: everything but the slow runs (docs/testing.md, "Markers"), on two workers:
# 16.5 s against 25.6 s in one process, back to back on a 2-core machine in a slow hour
check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist worksteal $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/table.py $(ARGS)

sim: $(STAMP)
	$(BIN)/p2pbot sim $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
