# `make demo` runs the pipeline end to end on embedded services; `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit bench bench-quality bench-scale bench-duplicates datasets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The convert extra brings PyTorch for the one-time ONNX conversion and datasets AugLy for the
# held-out copy-detection sets; workers never import them.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[convert,datasets,test]'
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/python scripts/demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# Figures measured side by side in one run; BENCH_JSON=FILE also writes them as JSON.
bench: install
	$(BIN)/python -m bench.ingest $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.query $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.scaling $(if $(BENCH_JSON),--json $(BENCH_JSON))

# A million rows in the real Milvus standalone through the product's index client: load rate,
# readiness, memory and bytes per image, search latency and recall against exact search.
bench-scale: datasets
	$(BIN)/python -m bench.scale $(if $(BENCH_JSON),--json $(BENCH_JSON))

# `query duplicates` against the true pairs of the copy-detection sets (indexed with their
# queries), then timed on the same collection filled up to 100,000 rows; the verification
# matcher beside the one it replaced.
bench-duplicates: datasets
	$(BIN)/python -m bench.matching $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.duplicates $(if $(BENCH_JSON),--json $(BENCH_JSON))

# Development datasets for retrieval quality, fetched once into RIS_CACHE_DIR/datasets/.
datasets: install
	$(BIN)/python -m ris_cli.datasets

# Retrieval quality: descriptor variants by exact search, every shipped model through
# `query eval` (real workers and Milvus Lite) on the development sets, the quality gate of
# every runtime and precision this host runs, then searches checking kept features by depth.
bench-quality: datasets
	$(BIN)/python -m bench.descriptor_sweep $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.quality $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.precision_gate $(if $(BENCH_JSON),--json $(BENCH_JSON))
	$(BIN)/python -m bench.kept_features $(if $(BENCH_JSON),--json $(BENCH_JSON))

unit: install
	$(BIN)/python -m pytest -ra tests/unit

clean:
	rm -rf .ris .pytest_cache .mypy_cache .ruff_cache
