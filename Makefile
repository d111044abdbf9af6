# speechbrain-fsce developer commands. `make test` is what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.fsce-installed

.PHONY: install install-pypesq test test-units test-rest test-fast test-slow demo benchmark-corpus train-shipped train-shipped-causal demo-corpus lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Editable install with the dev, onnx and dnsmos extras (the tests use all
# three); re-run when setup.py changes.
$(STAMP): setup.py | $(PY)
	$(PIP) install -q -e ".[dev,onnx,dnsmos]"
	$(MAKE) install-pypesq
	touch $(STAMP)

install: $(STAMP)

# pypesq 1.2.4 (the paper's raw narrow-band PESQ) imports numpy in its
# setup.py and needs -fcommon with current gcc: plain `pip install pypesq`
# fails. Building without isolation against an installed numpy works with
# pip 23 to 26 (pip 25.3+ no longer has --no-use-pep517).
install-pypesq: | $(PY)
	$(PY) -c "import pypesq" 2>/dev/null || ( \
	  $(PIP) install -q setuptools wheel numpy && \
	  CFLAGS=-fcommon $(PIP) install -q --no-build-isolation pypesq==1.2.4 )

# Lint (ruff check + format check) first, then every test and doctest
# (the package, the tests and the build-time tools) but the slow ones
# (test-slow), in two pytest processes side by side, one per core of a
# 2-core machine, of about the same CPU time (~3 min each): the unit tests,
# and the rest (recipe runs and command lines, the ONNX unit tests,
# consistency checks, doctests). Each prints its output when it ends, with
# its 10 slowest tests: keep them fast.
test: lint
	$(MAKE) --no-print-directory -j2 --output-sync=target test-units test-rest

PYTEST_FAST := $(PY) -m pytest -q --durations=10 --doctest-modules
DOCTESTED := speechbrain_fsce tools benchmarks/quality_systems.py benchmarks/quality.py benchmarks/ab_validation.py benchmarks/clean_input.py
REST := tests/integration tests/consistency $(wildcard tests/unittests/test_onnx*.py)

test-units: $(STAMP)
	$(PYTEST_FAST) tests $(addprefix --ignore=,$(REST))

test-rest: $(STAMP)
	$(PYTEST_FAST) $(REST) $(DOCTESTED)

test-fast: $(STAMP)
	$(PY) -m pytest -q -x --doctest-modules speechbrain_fsce tests/unittests

# What test leaves out (@pytest.mark.slow): more recipe runs (causal yaml,
# torchrun, VoiceBank, DNSMOS in the reports, silent training speech), full
# sweeps and second variants of checks the fast suite makes once.
test-slow: $(STAMP)
	$(PY) -m pytest -q --durations=15 -m slow --runslow tests

# Trains on the embedded demo corpus for a fixed 500 updates (recipes/TIMIT/hparams/demo.yaml),
# evaluates, prints the table: the same table on any machine, only the time differs.
demo: $(STAMP)
	rm -rf results/demo  # a fresh run: an old one would be resumed and trained further
	cd recipes/TIMIT && ../../$(PY) train.py hparams/demo.yaml --output_folder=../../results/demo
	@cat results/demo/results.md
	@echo "Listening page: results/demo/index.html   model folder: results/demo/model"

# Corpus builders (build-time tools in tools/corpora/, not in the installed package).
benchmark-corpus: $(STAMP)
	$(PY) -m tools.corpora.benchmark_corpus --output_folder data/benchmark

# The shipped models' trainings (recipe yamls recipes/TIMIT/hparams/shipped*.yaml,
# on the benchmark corpus; each resumes from its save/ folder when run again).
train-shipped: $(STAMP)
	cd recipes/TIMIT && ../../$(PY) train.py hparams/shipped.yaml

train-shipped-causal: $(STAMP)
	cd recipes/TIMIT && ../../$(PY) train.py hparams/shipped_causal.yaml

# Rebuilds the committed demo corpus (speechbrain_fsce/dataio/demo_corpus).
demo-corpus: $(STAMP)
	$(PY) -m tools.corpora.demo_corpus

LINTED := speechbrain_fsce tests recipes benchmarks tools conftest.py setup.py

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

# Applies the formatter to the whole tree (then `make lint` passes).
format: $(STAMP)
	$(VENV)/bin/ruff format $(LINTED)
	$(VENV)/bin/ruff check --fix $(LINTED)

clean:
	rm -rf results build *.egg-info .pytest_cache
