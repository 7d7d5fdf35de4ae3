# autostop: every tool these targets need installs into the project's own folders.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
CARGO ?= cargo

.PHONY: test unit lint bench build venv clean

## make test: everything CI runs: unit, flow and adapter tests, and integration tests on moto.
test: $(VENV)/.installed
	$(CARGO) build --tests --quiet
	bash tests/with-moto.sh $(CARGO) test -- --include-ignored

## make unit: the tests that need no moto.
unit:
	$(CARGO) test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## make bench: handler time per request and AWS calls per wake, on the in-memory cloud.
bench:
	$(CARGO) bench --bench wake

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tests/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) target
