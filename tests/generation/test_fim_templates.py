"""FIM templates per model family, checked against real tokenizers."""

import ast
from pathlib import Path

import pytest
from budgetpass.generation import prompts
from budgetpass.generation.backends import open_llamacpp
from budgetpass.generation.backends.llamacpp import LlamaCppModel
from budgetpass.generation.prompts import template_for
from budgetpass.generation.source import locate_function, normalize_body, splice_body
from budgetpass.generation.types import SamplingParams

VOCABS = Path(__file__).parent / "fixtures" / "vocab"
SOURCE = '''import re


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, lower-cased."""
    raise NotImplementedError


def shout(text: str) -> str:
    return text.upper() + "!"
'''


@pytest.fixture(scope="module", params=[("ggml-vocab-deepseek-coder.gguf", "deepseek-coder"),
                                        ("ggml-vocab-starcoder.gguf", "starcoder2")])
def vocab(request):
    name, family = request.param
    model = LlamaCppModel(VOCABS / name, vocab_only=True)
    yield model, family
    model.close()


def test_family_is_detected_from_the_vocabulary(vocab):
    model, family = vocab
    assert template_for(model).name == family


def test_fim_markers_and_stops_are_single_special_tokens(vocab):
    model, family = vocab
    template = prompts.TEMPLATES[family]
    for marker in template.markers:
        assert model.is_special_token(marker), marker
        assert len(model.tokenize(marker, special=False)) > 1  # typed by a user: plain text
    special_stops = [s for s in template.stops if model.is_special_token(s)]
    assert special_stops, "the family's end-of-body token must be one special token"


def test_prompt_tokenizes_with_markers_at_the_right_places(vocab):
    model, family = vocab
    template = prompts.TEMPLATES[family]
    text = prompts.build_prompt(prompts.BodyRequest(SOURCE, "words"),
                                prompts.ModelPromptInfo(family, template), "fim").text
    tokens = model.tokenize(text)
    ids = [model.tokenize(m)[0] for m in template.markers]
    positions = [tokens.index(i) for i in ids]
    assert positions == sorted(positions) and positions[0] == 0  # prefix, suffix, middle
    assert tokens[-1] == ids[-1]  # the model writes right after the middle marker


def test_override_wins_and_unknown_names_are_refused(vocab):
    model, _ = vocab
    assert template_for(model, "plain").name == "plain"
    with pytest.raises(ValueError, match="unknown prompt template"):
        template_for(model, "gpt-9")


def test_codellama_keeps_its_spaces():
    text = prompts.CODELLAMA.fill("def f(x):\n", "\nprint(f(1))\n")
    assert text == "<PRE> def f(x):\n <SUF>\nprint(f(1))\n <MID>"
    assert prompts.CODELLAMA.markers == ("<PRE>", "<SUF>", "<MID>")


def test_codestral_puts_the_suffix_first():
    assert prompts.CODESTRAL.fill("BEFORE", "AFTER") == "[SUFFIX]AFTER[PREFIX]BEFORE"
    # The rest of a line (inline completion) goes through the same builder, in the same order.
    line = prompts.build_prompt(prompts.LineRequest("x = fo", "\nprint(x)"),
                                prompts.ModelPromptInfo("codestral", prompts.CODESTRAL))
    assert line.text == "[SUFFIX]\nprint(x)[PREFIX]x = fo" and line.style == "fim"


def test_no_fim_tokens_means_plain():
    assert prompts.choose_template({"<fim_prefix>"}).name == "plain"  # incomplete set
    assert prompts.choose_template(set()).name == "plain"


@pytest.mark.slow
def test_qwen_fim_body_ends_cleanly_at_a_stop(qwen_path):
    model = open_llamacpp(qwen_path)
    template = template_for(model)
    assert template.name == "qwen2.5-coder"
    prompt = prompts.build_prompt(prompts.BodyRequest(SOURCE, "words"),
                                  prompts.ModelPromptInfo("qwen", template), "fim")
    result = model.generate(prompt.text, 4, SamplingParams(temperature=0.6, max_tokens=96,
                                                           stop=prompt.stops, seed=1))
    finished = [c for c in result.completions if c.finish_reason == "stop"]
    assert finished
    site = locate_function(SOURCE, "words")
    for c in finished:
        assert not any(m in c.text for m in template.markers + template.stops)
        body = normalize_body(c.text, site)
        assert body.usable, body
        ast.parse(splice_body(SOURCE, site, body.text))  # a whole body, not a cut-off one
