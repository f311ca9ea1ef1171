# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := examples/textkit/textkit/text.py

.PHONY: demo test test-fast models install clean-venv bench-reallocation

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

test: models
	$(BIN)/budgetpass models fetch smollm2-135m
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean-venv:
	rm -rf $(VENV)

# The paper's analysis with our stack (HumanEval, 0.5B x k vs 1.5B x b): long; resumes from its cache.
bench-reallocation: models
	$(BIN)/budgetpass models fetch qwen2.5-coder-1.5b
	$(BIN)/budgetpass bench reallocation
