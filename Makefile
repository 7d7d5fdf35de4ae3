# autostop: every tool these targets need installs into the project's own folders.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
CARGO ?= cargo

# Lambda architecture: the host's by default (no cross target needed); ARCH=arm64 for Graviton.
HOST_ARCH := $(shell uname -m | sed -e 's/aarch64/arm64/' -e 's/x86_64/x86-64/')
ARCH  ?= $(HOST_ARCH)
# make deploy takes the architecture from the stack or the zip unless ARCH is given.
DEPLOY_ARCH := $(if $(filter command line environment,$(origin ARCH)),$(ARCH),)
# The tests' build: cargo-lambda's, for this machine, so the tests and the zip they deploy are
# one build (the SDK compiles once) and the test binaries run here.
TEST_DIR := target/$(shell uname -m)-unknown-linux-gnu/debug
LAMBDA := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/cargo-lambda lambda
INCLUDE_CONFIG = $(if $(wildcard autostop.toml),--include autostop.toml,)

.PHONY: test unit lint bench build package demo deploy browser-tools venv clean


## make test: everything CI runs: unit, flow and adapter tests, integration tests on moto, and
## the CloudFormation template (cfn-lint, then a deploy into moto's CloudFormation).
test: $(VENV)/.build-tools
	@# One build: cargo-lambda compiles the tests with the Lambda zip (make package). The test
	@# tools (moto, cfn-lint, selenium, Chromium) install beside it, logged to target/setup.log.
	@mkdir -p target; rm -f target/setup.rc
	@( $(MAKE) --no-print-directory venv browser-tools >target/setup.log 2>&1; echo $$? >target/setup.rc ) & \
	  $(MAKE) --no-print-directory package; built=$$?; wait; \
	  [ "$$(cat target/setup.rc)" = 0 ] || { cat target/setup.log; echo "test: the test tools did not install (above)" >&2; exit 1; }; \
	  exit $$built
	$(VENV)/bin/cfn-lint infra/autostop.yaml
	bash tests/with-moto.sh $(PY) tests/run_tests.py target/test-build.json --include-ignored
	bash tests/with-moto.sh $(PY) tests/infra_test.py
	@# The deploy path itself: the zip cargo-lambda built, through make deploy, into moto.
	bash tests/with-moto.sh $(PY) tests/deploy_test.py
	AUTOSTOP_BIN=$(TEST_DIR)/autostop bash tests/with-moto.sh $(PY) tests/browser_test.py

## make demo: the whole product on this machine, moto standing in for AWS (Ctrl-C stops it).
demo: $(VENV)/.installed $(VENV)/.build-tools
	@# The same build as make test, so neither rebuilds the SDK.
	$(MAKE) --no-print-directory package
	AUTOSTOP_BIN=$(TEST_DIR)/autostop bash tests/with-moto.sh $(PY) tests/demo/demo.py

## make deploy BUCKET=my-bucket [STACK=autostop] [ARCH=arm64] [PARAMS="VpcId=... SubnetIds=a,b"]
deploy: $(VENV)/.installed
	ARCH=$(DEPLOY_ARCH) $(PY) infra/deploy.py

## Debian's Chromium and its driver, for the browser test (installed once, as root or via sudo).
browser-tools:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver fonts-liberation; }


## make unit: the tests that need no moto (the same build as make test).
unit: $(VENV)/.build-tools
	$(MAKE) --no-print-directory package
	$(PY) tests/run_tests.py target/test-build.json

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

## make package: the debug Lambda zip for this machine, built by cargo-lambda together with the
## tests (dev-dependency features included), so make test and make demo compile the SDK once.
## The build's messages go to target/test-build.json (tests/run_tests.py runs what it lists).
package: $(VENV)/.build-tools
	@mkdir -p target
	@$(if $(wildcard autostop.toml),,echo "package: no autostop.toml here: the zip has no config" >&2)
	$(LAMBDA) build --$(HOST_ARCH) --tests --output-format zip --message-format json-render-diagnostics \
	  $(INCLUDE_CONFIG) > target/test-build.json

## make build: the release Lambda zip (bootstrap + autostop.toml) in target/lambda/autostop/.
build: $(VENV)/.build-tools
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed | grep -q aarch64-unknown-linux-gnu; then \
	  rustup target add aarch64-unknown-linux-gnu || { echo "build: the arm64 Rust target cannot be installed here; use ARCH=x86-64" >&2; exit 2; }; fi
	@$(if $(wildcard autostop.toml),,echo "build: WARNING: no autostop.toml at the top of the repository: the zip has no config, and make deploy will refuse it" >&2)
	$(LAMBDA) build --release --$(ARCH) $(INCLUDE_CONFIG) --output-format zip
	@ls -l target/lambda/autostop/bootstrap.zip
	@unzip -l target/lambda/autostop/bootstrap.zip | tail -n +1

venv: $(VENV)/.installed

$(VENV)/.created:
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	touch $@

$(VENV)/.installed: tests/requirements.txt $(VENV)/.created
	$(PY) -m pip install --quiet -r tests/requirements.txt
	touch $@

$(VENV)/.build-tools: tests/build-requirements.txt $(VENV)/.created
	$(PY) -m pip install --quiet -r tests/build-requirements.txt
	touch $@

clean:
	rm -rf $(VENV) target
