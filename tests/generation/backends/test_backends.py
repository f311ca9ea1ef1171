"""Which backend ``auto`` picks, and that every backend has the one interface."""

import pytest
from budgetpass.generation.backends import Backend, ModelSpec, choose_backend, open_model
from budgetpass.generation.backends import choice as choice_module
from budgetpass.generation.backends.llamacpp import LlamaCppModel
from budgetpass.generation.backends.openai import OpenAICompatibleBackend
from budgetpass.generation.backends.vllm import VLLMBackend


def test_auto_on_this_machine_is_llama_cpp_with_a_reason(monkeypatch):
    monkeypatch.delenv("BUDGETPASS_BACKEND", raising=False)
    choice = choose_backend("auto")
    if choice.gpu is None:
        assert choice.name == "llama.cpp" and "CPU" in choice.reason


@pytest.mark.parametrize("gpu,has_vllm,expected", [("H100", True, "vllm"),
                                                   ("H100", False, "llama.cpp"),
                                                   (None, True, "llama.cpp"),
                                                   (None, False, "llama.cpp")])
def test_auto_wants_a_cuda_gpu_and_vllm(monkeypatch, gpu, has_vllm, expected):
    monkeypatch.delenv("BUDGETPASS_BACKEND", raising=False)
    monkeypatch.setattr(choice_module, "cuda_gpu", lambda: (gpu, "test"))
    real = choice_module.importlib.util.find_spec
    monkeypatch.setattr(choice_module.importlib.util, "find_spec",
                        lambda name: (object() if has_vllm else None) if name == "vllm"
                        else real(name))
    choice = choose_backend("auto")
    assert choice.name == expected
    if gpu and not has_vllm:
        assert "pip install 'budgetpass[gpu]'" in choice.reason


def test_explicit_and_environment_settings(monkeypatch):
    assert choose_backend("openai").name == "openai"
    monkeypatch.setenv("BUDGETPASS_BACKEND", "vllm")
    assert choose_backend("auto").reason.startswith("BUDGETPASS_BACKEND=vllm")
    with pytest.raises(ValueError, match="unknown backend"):
        choose_backend("tensorrt")


def test_backends_share_the_interface():
    for cls in (LlamaCppModel, OpenAICompatibleBackend, VLLMBackend):
        for method in ("generate", "tokenize", "template_hints", "close"):
            assert callable(getattr(cls, method)), (cls, method)
        assert isinstance(cls.busy, property), cls
    backend = OpenAICompatibleBackend("http://127.0.0.1:9")
    assert isinstance(backend, Backend) and backend.busy is False


def test_open_model_refuses_incomplete_settings(tmp_path):
    with pytest.raises(ValueError, match="needs the server's URL"):
        open_model(ModelSpec("0.5B", "openai"))
    with pytest.raises(ValueError, match="unknown backend"):
        open_model(ModelSpec("0.5B", "tensorrt"))
