# Two commands do all set-up on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements-dev.lock

.PHONY: install lock run test lint typecheck bench bench-profile clean

# Installs exactly the pinned, hash-checked versions of the lock, then tollgate itself.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## re-resolve pyproject.toml's dependencies into the two locks, and commit them:
## requirements-dev.lock (with the dev extra: what make install and CI install) and
## deploy/requirements.lock (run time + otel: what the container image installs)
lock:
	test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --strip-extras \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml
	grep -v '^#' deploy/requirements.lock > deploy/requirements.lock.new  # keep its pins, as for the dev lock
	$(BIN)/pip-compile --quiet --extra otel --generate-hashes --strip-extras --no-header --no-annotate \
		--no-emit-index-url --no-emit-find-links --output-file deploy/requirements.lock.new pyproject.toml
	cat deploy/requirements.lock.header deploy/requirements.lock.new > deploy/requirements.lock
	rm deploy/requirements.lock.new

## run the gateway on the embedded demo config (fake upstream models, master key sk-1234)
run: $(STAMP)
	$(BIN)/tollgate serve --port $${PORT:-4000}

## lint, type-check and run the whole test suite, on two worker processes (pytest-xdist), a test
## file per worker; PYTEST_ARGS="-n 0" runs it in one process, e.g. for pdb
PYTEST_ARGS ?= -n 2 --dist loadfile
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy --strict src/tollgate
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

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
