"""backends.open_model: one way to get a backend, its prompt template and the budget's parameter
count, whatever the backend (the llama.cpp part loads the real SmolLM2; the rest needs no model)."""

from pathlib import Path

import pytest
from budgetpass.generation import models
from budgetpass.generation.backends import (
    BackendError,
    ModelCache,
    ModelSpec,
    model_parameters,
    open_model,
)
from budgetpass.generation.prompts import template_from_name, template_from_vocabulary

from tests.llama_server import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name,template", [
    ("/models/qwen2.5-coder-0.5b.gguf", "qwen2.5-coder"),
    ("Qwen/Qwen2.5-Coder-7B-Instruct", "qwen2.5-coder"),
    ("deepseek-ai/deepseek-coder-6.7b-base", "deepseek-coder"),
    ("bigcode/starcoder2-3b", "starcoder2"),
    ("codellama/CodeLlama-7b-hf", "codellama"),
    ("mistralai/Codestral-22B-v0.1", "codestral"),
    ("Qwen/CodeQwen1.5-7B", "starcoder2"),
])
def test_a_servers_model_name_tells_the_template(name, template):
    assert template_from_name(name).name == template


def test_no_known_name_tells_nothing():
    assert template_from_name("smollm2-135m.gguf", "default") is None


def test_a_tokenizer_vocabulary_tells_the_template():
    vocabulary = {"<|fim_prefix|>": 151659, "<|fim_suffix|>": 151661, "<|fim_middle|>": 151660,
                  "def": 750}
    assert template_from_vocabulary(vocabulary).name == "qwen2.5-coder"
    assert template_from_vocabulary({"<|fim_prefix|>": 1, "def": 2}).name == "plain"


def test_budget_parameters_for_a_server_come_from_the_configured_name():
    assert model_parameters(ModelSpec("0.5B", "openai")) == 500_000_000
    assert model_parameters(ModelSpec("qwen2.5-coder-1.5b", "openai")) == 1_543_714_304
    with pytest.raises(models.ModelError, match=r"set model to a known name .*or a parameter "
                                                r"count such as 0.5B"):
        model_parameters(ModelSpec("my-finetune", "openai"))


def test_openai_needs_an_endpoint_and_an_unreachable_one_is_named():
    with pytest.raises(ValueError, match="backend openai needs the server's URL"):
        open_model(ModelSpec("0.5B", "openai"))
    endpoint = f"http://127.0.0.1:{free_port()}"
    for _ in range(2):  # a failure is not cached: the next call tries again
        with pytest.raises(BackendError, match=f"cannot connect to {endpoint}: connection refused"):
            open_model(ModelSpec("0.5B", "openai", endpoint))


@pytest.mark.slow
def test_llama_cpp_is_opened_once_with_the_template_its_vocabulary_tells(smol_path, qwen_path):
    smol = open_model(ModelSpec(str(smol_path), "llama.cpp"))
    assert open_model(ModelSpec(str(smol_path), "llama.cpp")) is smol
    assert smol.template().template.name == "plain" and not smol.template().fallback
    assert smol.template("qwen2.5-coder").template.name == "qwen2.5-coder"
    qwen = open_model(ModelSpec("qwen2.5-coder-0.5b", "llama.cpp"))
    assert qwen.template().template.name == "qwen2.5-coder"
    assert "vocabulary" in qwen.template().reason
    assert qwen.parameters == 494_032_768 and qwen.to_json()["backend"] == "llama.cpp"


class CountingServer:
    """Stands in for a loaded backend (the cache's bookkeeping only; nothing is generated)."""

    loads = 0

    def __init__(self, spec):
        CountingServer.loads += 1
        self.model, self.closed = spec.model, False

    def template_hints(self, markers):
        from budgetpass.generation.prompts import TemplateHints

        return TemplateHints(names=(self.model,), source="the server")

    def close(self):
        self.closed = True


def test_the_cache_keeps_the_newest_reuses_what_is_alive_and_closes_all(monkeypatch):
    import gc

    from budgetpass.generation.backends import opening

    monkeypatch.setattr(opening, "_load", lambda spec, choice: CountingServer(spec))
    CountingServer.loads = 0
    cache = ModelCache(keep=2)
    specs = [ModelSpec(f"qwen2.5-coder-{size}", "openai", "http://127.0.0.1:9")
             for size in ("0.5b", "1.5b")] + [ModelSpec("7B", "openai", "http://127.0.0.1:9")]
    first = cache.open(specs[0])
    assert cache.open(specs[0]) is first and CountingServer.loads == 1
    assert first.template().template.name == "qwen2.5-coder"
    cache.open(specs[1])
    cache.open(specs[2])  # evicts specs[0]; a job still holds ``first``
    again = cache.open(specs[0])
    assert again.backend is first.backend and CountingServer.loads == 3  # not loaded twice
    gc.collect()  # specs[1] dropped out when specs[0] came back, and nobody holds it
    cache.open(specs[1])
    assert CountingServer.loads == 4  # freed, so loaded again
    alive = [cache.open(s).backend for s in specs]
    cache.close_all()
    assert all(b.closed for b in alive)
    assert cache.open(specs[0]).backend is not alive[0]  # closed ones are never handed out
