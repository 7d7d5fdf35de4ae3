# autostop: every tool these targets need installs into the project's own folders.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
CARGO ?= cargo

# Lambda architecture: the host's by default (no cross target needed); ARCH=arm64 for Graviton.
ARCH  ?= $(shell uname -m | sed -e 's/aarch64/arm64/' -e 's/x86_64/x86-64/')

.PHONY: test unit lint bench build package demo deploy browser-tools venv clean


## make test: everything CI runs: unit, flow and adapter tests, integration tests on moto, and
## the CloudFormation template (cfn-lint, then a deploy into moto's CloudFormation).
test: $(VENV)/.installed
	$(VENV)/bin/cfn-lint infra/autostop.yaml
	$(CARGO) build --tests --quiet
	bash tests/with-moto.sh $(CARGO) test -- --include-ignored
	bash tests/with-moto.sh $(PY) tests/infra_test.py
	@# The deploy path itself: a zip from cargo-lambda, through make deploy, into moto.
	$(MAKE) --no-print-directory package
	bash tests/with-moto.sh $(PY) tests/deploy_test.py
	$(MAKE) --no-print-directory browser-tools
	bash tests/with-moto.sh $(PY) tests/browser_test.py

## make demo: the whole product on this machine, moto standing in for AWS (Ctrl-C stops it).
demo: $(VENV)/.installed
	@# The same build as make test (dev-dependency features included), so neither rebuilds the SDK.
	$(CARGO) build --tests --quiet
	bash tests/with-moto.sh $(PY) tests/demo/demo.py

## make deploy BUCKET=my-bucket [STACK=autostop] [ARCH=arm64] [PARAMS="VpcId=... SubnetIds=a,b"]
deploy: $(VENV)/.installed
	ARCH=$(ARCH) $(PY) infra/deploy.py

## Debian's Chromium and its driver, for the browser test (installed once, as root or via sudo).
browser-tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver fonts-liberation; }


## make unit: the tests that need no moto.
unit:
	$(CARGO) test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## make bench: handler time per request and AWS calls per wake, on the in-memory cloud.
bench:
	$(CARGO) bench --bench wake
	@# The binary `make build` ships (the release profile: opt-level "s", LTO), against a bare
	@# function built with cargo's plain release profile, at the template's environment.
	@# Copied aside: cargo bench writes its own build of the binary to the same path.
	$(CARGO) build --release --bin autostop
	cp target/release/autostop target/autostop-shipped
	AUTOSTOP_BENCH_BINARY=$(CURDIR)/target/autostop-shipped $(CARGO) bench --bench runtime

## make package: the Lambda zip as a debug build with cargo-lambda (what make test deploys).
package: $(VENV)/.build-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --$(ARCH) --output-format zip \
	  $(if $(wildcard autostop.toml),--include autostop.toml,)

## make build: the Lambda zip (bootstrap + autostop.toml if present) in target/lambda/autostop/.
build: $(VENV)/.build-tools
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then \
	  rustup target add aarch64-unknown-linux-gnu || { echo "build: the arm64 Rust target cannot be installed here; use ARCH=x86-64" >&2; exit 2; }; fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda build --release --$(ARCH) \
	  $(if $(wildcard autostop.toml),--include autostop.toml,) --output-format zip
	@ls -l target/lambda/autostop/bootstrap.zip
	@unzip -l target/lambda/autostop/bootstrap.zip | tail -n +1

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tests/requirements.txt
	touch $@

$(VENV)/.build-tools: tests/build-requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r tests/build-requirements.txt
	touch $@

clean:
	rm -rf $(VENV) target
