# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck bench bench-profile clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run the gateway on the embedded demo config (fake upstream models, master key sk-1234)
run: $(STAMP)
	$(BIN)/tollgate serve --port $${PORT:-4000}

## lint, type-check and run the whole test suite
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy --strict src/tollgate
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/tollgate

## benchmark tollgate against the upstream alone and the LiteLLM proxy (bench/README.md)
## e.g.  make bench BENCH_ARGS=--quick   |   make bench BENCH_ARGS=--skip-litellm
##       make bench BENCH_ARGS="--scenarios production --skip-litellm"   (2 workers, PostgreSQL, Redis, key chain)
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## py-spy profile of tollgate under load -> bench/results/{flame,stacks,profile}-tollgate-*.{svg,txt,md}
## e.g.  make bench-profile BENCH_ARGS="--profile-scenario production --profile-seconds 20"
bench-profile: $(STAMP)
	$(BIN)/python bench/run.py --profile $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench build *.egg-info
