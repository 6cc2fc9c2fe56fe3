# Two commands: `make demo` and `make test`. Each sets up .venv first when needed.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@$(PY) -m ruff check src tests benchmarks scripts
	@$(PY) -m mypy
	@$(PY) -m pytest

bench: setup
	@$(PY) benchmarks/bench_stylize.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
