"""The one prompt builder (styles, chat templates, bounded context) and the one body normaliser."""

import ast
from pathlib import Path

import pytest
from budgetpass.generation import prompts
from budgetpass.generation.prompts import (
    BodyRequest,
    ChatTemplate,
    ModelPromptInfo,
    PromptError,
    build_prompt,
)
from budgetpass.generation.source import locate_function, normalize_body, splice_body

VOCABS = Path(__file__).parent / "fixtures" / "vocab"
# ChatML as Qwen2.5 writes it (the bundled GGUFs carry the full template; the slow tests read it).
CHATML = ("{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHAT = ModelPromptInfo("chatty", prompts.QWEN_CODER, ChatTemplate(CHATML, "", "<|im_end|>", "x"))
FIM_ONLY = ModelPromptInfo("fim-only", prompts.QWEN_CODER)
SOURCE = '''import math


def area(r: float) -> float:
    """Area of a circle of radius ``r``."""
    raise NotImplementedError


def perimeter(r: float) -> float:
    """Uses ``area``? No: 2 pi r."""
    pass
'''


# --- the normaliser, on every unusable shape ---------------------------------------------------

@pytest.fixture
def site():
    return locate_function(SOURCE, "area")


@pytest.mark.parametrize("reply, problem", [
    ("", "empty body"),
    ("\n\n   \n", "empty body"),
    ("    pass\n", "a stub, not an implementation"),
    ("pass\n", "a stub, not an implementation"),
    ("    raise NotImplementedError\n", "a stub, not an implementation"),
    ("    # Your code here\n", "only comments"),
    ("# Your code here\n", "only comments"),
    ("```python\n    ...\n```\n", "a stub, not an implementation"),
])
def test_unusable_bodies_are_dropped_with_a_reason(site, reply, problem):
    assert normalize_body(reply, site).problem == problem


def test_a_body_at_column_0_is_reindented(site):
    body = normalize_body("if r < 0:\n    raise ValueError(r)\nreturn math.pi * r ** 2\n", site)
    assert body.usable
    assert body.text == "    if r < 0:\n        raise ValueError(r)\n    return math.pi * r ** 2\n"
    ast.parse(splice_body(SOURCE, site, body.text))


def test_a_column_0_body_ends_at_the_next_definition(site):
    body = normalize_body("x = r * r\nreturn math.pi * x\n\ndef other():\n    pass\n", site)
    assert body.text == "    x = r * r\n    return math.pi * x\n"


def test_fences_and_chatter_are_stripped(site):
    fenced = "Here is the body:\n```python\n    return math.pi * r ** 2\n```\nHope it helps!"
    assert normalize_body(fenced, site).text == "    return math.pi * r ** 2\n"
    # A prefilled chat reply continues inside the block and closes it.
    assert normalize_body("    return math.pi * r * r\n```\n", site).text == \
        "    return math.pi * r * r\n"


def test_a_rewritten_whole_function_gives_its_body(site):
    reply = ('```python\nimport math\n\ndef area(r: float) -> float:\n    """Area."""\n'
             "    return math.pi * r ** 2\n```")
    assert normalize_body(reply, site).text == "    return math.pi * r ** 2\n"


def test_the_body_is_cut_at_the_dedent(site):
    body = normalize_body("    return 1\n\ndef other():\n    return 2\n", site)
    assert body.text == "    return 1\n" and body.usable


# --- styles and bad input ----------------------------------------------------------------------

def test_auto_asks_a_whole_body_through_the_chat_template_and_the_reply_is_the_body():
    prompt = build_prompt(BodyRequest(SOURCE, "area"), CHAT)
    assert prompt.style == "chat"
    assert prompt.text.startswith("<|im_start|>user\n")
    assert prompt.text.endswith('<|im_start|>assistant\n```python\n' + prompt.prefill)
    assert prompt.prefill.endswith('"""Area of a circle of radius ``r``."""\n')
    assert "\n```" in prompt.stops and "<|im_end|>" in prompt.stops and "\ndef " in prompt.stops


def test_auto_without_a_chat_template_is_fim_and_the_rest_of_a_line_is_fim():
    assert build_prompt(BodyRequest(SOURCE, "area"), FIM_ONLY).style == "fim"
    line = build_prompt(prompts.LineRequest("x = ", "\n"), CHAT)
    assert line.style == "fim" and line.stops[-1] == "\n"


def test_chat_for_a_model_without_a_template_names_the_model_and_its_styles():
    with pytest.raises(PromptError, match=r"model fim-only has no chat template.*"
                                          r"supports: auto, fim, plain"):
        build_prompt(BodyRequest(SOURCE, "area"), FIM_ONLY, "chat")
    with pytest.raises(PromptError, match="unknown prompt style"):
        build_prompt(BodyRequest(SOURCE, "area"), FIM_ONLY, "sonnet")


def test_a_template_that_fails_names_its_line_and_auto_falls_back_to_fim():
    broken = ModelPromptInfo("broken", prompts.QWEN_CODER, ChatTemplate(
        "{% for m in messages %}\n{{ m.content }}\n"
        "{{ raise_exception('only system turns') }}\n{% endfor %}", origin="test"))
    with pytest.raises(PromptError, match=r"model broken .*failed to render at line 3: only "
                                          r"system turns"):
        build_prompt(BodyRequest(SOURCE, "area"), broken, "chat")
    fell_back = build_prompt(BodyRequest(SOURCE, "area"), broken, "auto")
    assert fell_back.style == "fim" and "fell back to fim" in fell_back.notes[0]
    syntax = ModelPromptInfo("bad", prompts.QWEN_CODER, ChatTemplate("ok\n{% if %}"))
    with pytest.raises(PromptError, match="at line 2"):
        build_prompt(BodyRequest(SOURCE, "area"), syntax, "chat")


def test_the_template_runs_sandboxed():
    sneaky = ModelPromptInfo("sneaky", prompts.QWEN_CODER, ChatTemplate(
        "{{ messages.append(1) }}{{ ''.__class__.__mro__ }}"))
    with pytest.raises(PromptError, match="sneaky"):
        build_prompt(BodyRequest(SOURCE, "area"), sneaky, "chat")


def test_plain_is_the_code_up_to_the_body():
    prompt = build_prompt(BodyRequest(SOURCE, "area"), CHAT, "plain")
    assert prompt.style == "plain" and prompt.text == prompt.prefill
    assert SOURCE.startswith(prompt.text.rstrip("\n").split("\n\n\n")[0])


# --- context: bounded, relevant, stable --------------------------------------------------------

def _big_module(n: int = 2000) -> str:
    parts = ["import itertools\nfrom collections import Counter\n\n\n",
             'def tokenize(text: str) -> list[str]:\n    """Split ``text`` into words."""\n'
             "    return text.split()\n\n\n"]
    parts += [f"def filler_{i}(x):\n    return x + {i}\n\n\n" for i in range(n)]
    parts.append("def stubbed(y):\n    raise NotImplementedError\n\n\n")
    parts.append('def count_words(text: str) -> Counter:\n    """Counts of tokenize(text)."""\n'
                 "    raise NotImplementedError\n")
    return "".join(parts)


def test_a_function_deep_in_a_large_module_gets_a_bounded_relevant_context():
    text = _big_module()
    prompt = build_prompt(BodyRequest(text, "count_words"), FIM_ONLY, "plain",
                          max_context_tokens=400)
    assert prompt.context_tokens <= 400
    assert prompt.text.startswith("import itertools\nfrom collections import Counter\n")
    assert "def tokenize(text: str) -> list[str]:" in prompt.text  # named by the docstring
    assert "filler_1999" in prompt.text and "filler_3(" not in prompt.text  # the code just above
    assert "stubbed" not in prompt.text and "NotImplementedError" not in prompt.text
    assert len(text) > 20 * len(prompt.text)


def test_the_prompt_does_not_change_while_the_body_is_typed():
    text = _big_module(50)
    typed = _big_module(50).rsplit("    raise NotImplementedError\n", 1)[0] + \
        "    counts = Counter()\n"
    first = build_prompt(BodyRequest(text, "count_words"), CHAT)
    second = build_prompt(BodyRequest(typed, "count_words"), CHAT)
    assert first.text == second.text


def test_signatures_come_from_the_project_modules_the_file_imports(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "util.py").write_text(
        'def normalise(word: str) -> str:\n    """Lower-case, no accents."""\n'
        "    return word.lower()\n\n\ndef unrelated():\n    return 1\n")
    main = tmp_path / "pkg" / "main.py"
    main.write_text("from .util import normalise, unrelated\n\n\n"
                    'def key(word):\n    """The sort key: normalise(word)."""\n    pass\n')
    prompt = build_prompt(BodyRequest(main.read_text(), "key", main, tmp_path), FIM_ONLY, "plain")
    assert "# pkg/util.py\ndef normalise(word: str) -> str:\n    \"\"\"Lower-case" in prompt.text
    assert "return word.lower()" not in prompt.text and "def unrelated" not in prompt.text


def test_a_method_keeps_its_class_header():
    text = ("class Shape:\n    \"\"\"A shape.\"\"\"\n\n    sides = 0\n\n"
            "    def scale(self, k):\n        \"\"\"Scaled copy.\"\"\"\n        pass\n")
    prompt = build_prompt(BodyRequest(text, "Shape.scale"), FIM_ONLY, "plain")
    assert prompt.text == text.replace("        pass\n", "")
    assert prompt.site.def_indent == "    " and prompt.site.body_indent == "        "


# --- one builder for every path ----------------------------------------------------------------

def test_inline_and_the_job_build_the_same_prompt_for_the_same_whole_body(tmp_path):
    from budgetpass.app.config import Config
    from budgetpass.app.target import prompt, resolve

    path = tmp_path / "shapes.py"
    text = SOURCE.replace("    raise NotImplementedError\n", "    \n", 1)
    path.write_text(text)
    offset = text.index('radius ``r``."""\n    ') + len('radius ``r``."""\n    ')
    for style in ("auto", "fim", "plain", "chat"):
        config = Config().evolve(**{"prompt.style": style, "project": str(tmp_path)})
        by_name = resolve(path, text, "area", None, "whole_body", config)
        at_cursor = resolve(path, text, None, offset, "at_cursor", config)
        assert at_cursor.kind == "whole_body" and at_cursor.cursor is not None
        made = prompt(at_cursor, CHAT, config)
        assert made == prompt(by_name, CHAT, config)
        assert made.style == (style if style != "auto" else "chat")


def test_vocabulary_fixtures_have_no_chat_template_so_chat_is_refused():
    for name in ("ggml-vocab-deepseek-coder.gguf", "ggml-vocab-starcoder.gguf"):
        assert prompts.chat_template_from_gguf(VOCABS / name) is None
    meta = prompts.gguf_metadata(VOCABS / "ggml-vocab-deepseek-coder.gguf",
                                 {"tokenizer.ggml.bos_token_id", "general.architecture"})
    assert meta["general.architecture"] == "llama" and isinstance(
        meta["tokenizer.ggml.bos_token_id"], int)


# --- the real bundled model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def qwen(qwen_path):
    from budgetpass.generation.backends import open_llamacpp
    from budgetpass.generation.prompts import template_for

    model = open_llamacpp(qwen_path)
    return model, prompts.model_prompt_info(model, "qwen2.5-coder-0.5b", template_for(model))


@pytest.mark.slow
def test_the_chat_template_renders_as_the_gguf_declares(qwen):
    model, info = qwen
    assert info.chat is not None and info.chat.eos_token == "<|im_end|>"
    assert "<|im_start|>" in info.chat.source  # read from the GGUF, not typed here
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Write f."}]
    ours = prompts.render_chat(info.chat, messages, info.name)
    # llama.cpp's own renderer of the template the GGUF declares (ChatML for Qwen2.5)
    assert ours == ("<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWrite f."
                    "<|im_end|>\n<|im_start|>assistant\n") == _llama_cpp_chat(model, messages)
    tokens = model.tokenize(ours)
    start, end = model.tokenize("<|im_start|>"), model.tokenize("<|im_end|>")
    assert len(start) == len(end) == 1  # special tokens as single tokens
    assert tokens.count(start[0]) == 3 and tokens.count(end[0]) == 2
    # The default system prompt comes from the template itself when none is given.
    assert prompts.render_chat(info.chat, messages[1:], info.name).startswith(
        "<|im_start|>system\nYou are Qwen")


def _llama_cpp_chat(model, messages) -> str:
    import ctypes

    lib = model.llama
    template = lib.llama_model_chat_template(model.model, None)
    array = (lib.llama_chat_message * len(messages))(*[
        lib.llama_chat_message(m["role"].encode(), m["content"].encode()) for m in messages])
    buf = ctypes.create_string_buffer(4096)
    n = lib.llama_chat_apply_template(template, array, len(messages), True, buf, 4096)
    return buf.raw[:n].decode()


WORDS = '''import re


def words(text: str) -> list[str]:
    """The words of ``text``: runs of letters, lower-cased.

    >>> words("Hello, World")
    ['hello', 'world']
    """
'''


@pytest.mark.slow
@pytest.mark.parametrize("style", ["chat", "fim", "plain"])
def test_every_style_ends_cleanly_with_a_body(qwen, style):
    from budgetpass.generation.types import SamplingParams

    model, info = qwen
    prompt = build_prompt(BodyRequest(WORDS, "words"), info, style)
    assert prompt.style == style
    result = model.generate(prompt.text, 2, SamplingParams(temperature=0.0 if style == "chat"
                                                           else 0.4, max_tokens=160,
                                                           stop=prompt.stops, seed=3))
    site = locate_function(WORDS, "words")
    for c in result.completions:
        assert c.finish_reason == "stop", (style, c.text)
        assert not any(stop in c.text for stop in prompt.stops)
        body = normalize_body(c.text, site)
        if style == "chat":  # the prefilled turn continues with the body itself
            assert body.usable and c.text.startswith("    "), c.text
        if body.usable:
            ast.parse(splice_body(WORDS, site, body.text))


def test_a_stub_the_docstring_names_shows_its_signature_but_never_its_body():
    text = ('def helper(x: int) -> int:\n    """Twice x."""\n    raise NotImplementedError\n\n\n'
            'def main(x):\n    """helper(x) plus one."""\n    pass\n')
    prompt = build_prompt(BodyRequest(text, "main"), FIM_ONLY, "plain")
    assert 'def helper(x: int) -> int:\n    """Twice x."""\n' in prompt.text
    assert "NotImplementedError" not in prompt.text


@pytest.mark.parametrize("style", ["chat", "fim", "plain"])
def test_a_repair_shows_the_failed_body_and_the_failing_message_where_the_body_starts(style):
    from budgetpass.generation.prompts import RepairHint

    hint = RepairHint("    return r * r\n", "test_geo.py::test_area: assert 4 == 12.566")
    fresh = build_prompt(BodyRequest(SOURCE, "area"), CHAT, style)
    repair = build_prompt(BodyRequest(SOURCE, "area", repair=hint), CHAT, style)
    block = ("    # This body failed a test:\n    #     return r * r\n    # The test said:\n"
             "    #     test_geo.py::test_area: assert 4 == 12.566\n    # A corrected body:\n")
    assert repair.prefill == fresh.prefill + block  # the reply is still the body, after the block
    assert repair.stops == fresh.stops and repair.site == fresh.site
    assert "asks to repair a failed candidate" in repair.notes
    if style == "chat":  # the user's turn shows it too
        assert repair.text.count("# This body failed a test:") == 2


def test_a_huge_or_binary_failure_is_trimmed_and_escaped_in_the_repair():
    from budgetpass.generation.prompts import RepairHint
    from budgetpass.generation.prompts.builder import REPAIR_FAILURE_LINES, REPAIR_LINE_CHARS

    failure = "\n".join(["E   \x00\x1b[31mbinary\udcff " + "x" * 5000] * 500)
    body = "\n".join(f"    y{i} = {i}" for i in range(200))
    repair = build_prompt(BodyRequest(SOURCE, "area", repair=RepairHint(body, failure)),
                          FIM_ONLY, "plain")
    block = repair.prefill.split("# This body failed a test:\n")[1]
    lines = block.splitlines()
    assert all(len(line) <= len("    #     ") + REPAIR_LINE_CHARS for line in lines)
    said = block.split("# The test said:\n")[1].split("    # A corrected body:")[0].splitlines()
    assert len(said) == REPAIR_FAILURE_LINES + 1 and said[-1].endswith("...")
    assert "\\x00\\x1b[31mbinary" in block and "\x00" not in block and "\x1b" not in block
    assert "#     y39 = 39" in block and "y40" not in block
    ast.parse(repair.prefill + "    return 0\n")  # still a module a body completes


@pytest.mark.parametrize("style", ["chat", "fim", "plain"])
def test_the_tests_calls_are_shown_where_the_body_starts_before_a_repair(style):
    from budgetpass.generation.prompts import RepairHint

    calls = ("cases (r, expected): (1, 3.14), (2, 12.57)", "assert area(r) == approx(expected)\x1b")
    fresh = build_prompt(BodyRequest(SOURCE, "area"), CHAT, style)
    shown = build_prompt(BodyRequest(SOURCE, "area", test_calls=calls), CHAT, style)
    block = ("    # The project's tests call it like this:\n"
             "    #     cases (r, expected): (1, 3.14), (2, 12.57)\n"
             "    #     assert area(r) == approx(expected)\\x1b\n")
    hint = RepairHint("    return r * r\n", "assert 4 == 12.566")
    both = build_prompt(BodyRequest(SOURCE, "area", test_calls=calls, repair=hint), CHAT, style)
    assert shown.stops == fresh.stops and shown.site == fresh.site
    if style == "chat":  # in the user's turn: as the opened block's last lines, the model closed it
        assert shown.prefill == fresh.prefill
        assert shown.text.count("The project's tests call it like this:") == 1
        assert "```python\ncases (r, expected): (1, 3.14), (2, 12.57)\nassert area(r) == " \
            "approx(expected)\\x1b\n```" in shown.text
        assert both.prefill.startswith(fresh.prefill + "    # This body failed a test:\n")
    else:  # left to right: comments the body follows
        assert shown.prefill == fresh.prefill + block
        assert both.prefill.startswith(fresh.prefill + block + "    # This body failed a test:\n")
    ast.parse(both.prefill + "    return 0\n")


def test_a_long_class_docstring_shrinks_to_its_first_line_when_over_budget():
    """What is always kept (imports, enclosing classes) must fit the budget too: a class
    documented at length (sympy's Poly) keeps its docstring's first line; the method's own
    docstring, the specification, stays whole. Within budget nothing changes."""
    long_doc = "Dense polynomials.\n\n" + "".join(f"    Example line {i} of many.\n"
                                                 for i in range(300))
    text = (f'"""Module "polytools".\n\nLong module notes.\n"""\nimport re\n\n\n'
            f'class Poly:\n    """{long_doc}    """\n\n'
            "    def degree(self, gen=0):\n        \"\"\"The degree in ``gen``.\n\n"
            "        >>> Poly().degree()\n        0\n        \"\"\"\n        pass\n")
    prompt = build_prompt(BodyRequest(text, "Poly.degree"), FIM_ONLY, "plain",
                          max_context_tokens=400)
    assert prompt.context_tokens <= 400
    assert '    """Dense polynomials."""\n' in prompt.text and "Example line 1 " not in prompt.text
    assert prompt.text.startswith('"""Module \\"polytools\\"."""\n\nimport re\n')
    assert ">>> Poly().degree()" in prompt.text  # the method's own docstring is whole
    assert any("shortened to their first line" in n for n in prompt.notes)
    small = text.replace(long_doc, "Dense polynomials.\n")
    whole = build_prompt(BodyRequest(small, "Poly.degree"), FIM_ONLY, "plain",
                         max_context_tokens=400)
    assert "Long module notes." in whole.text and not any("shortened" in n for n in whole.notes)


def _module_with_many_imports() -> str:
    names = [f"helper_{i}" for i in range(60)]
    imports = "from toolbox.helpers import (\n" + "".join(f"    {n},\n" for n in names) + ")\n"
    imports += "import os\nimport json as js\n\n\n"
    filler = "".join(f"def filler_{i}(x):\n    return helper_{i}(x) + {i}\n\n\n" for i in range(300))
    near = "def loader(path):\n    return js.loads(helper_7(path))\n\n\n"
    return imports + filler + near + ('def dump(obj, path):\n    """Write ``obj`` with '
                                      'helper_59."""\n    pass\n')


def test_imports_over_their_share_are_cut_to_the_names_used_most_nearby():
    """sympy's polytools imports ~450 tokens of names; a method uses a few of them. Over a third
    of the budget, the imports keep the names the function's own lines and the code just above
    use most, in file order, still valid Python."""
    text = _module_with_many_imports()
    prompt = build_prompt(BodyRequest(text, "dump"), FIM_ONLY, "plain", max_context_tokens=300)
    imports = prompt.text.split("\n\n\n")[0]
    assert FIM_ONLY.tokens(imports) <= 300 // 3
    ast.parse(imports)
    assert "helper_59" in imports  # named by the docstring
    assert "helper_7" in imports and "js" in imports  # used by the code just above
    assert "helper_3," not in imports and "import os" not in imports  # used only far above
    assert imports.index("toolbox") < imports.index("json")  # file order
    assert any("imports cut" in n for n in prompt.notes)
    small = build_prompt(BodyRequest(text, "dump"), FIM_ONLY, "plain", max_context_tokens=8000)
    assert "import os\n" in small.text and not any("imports cut" in n for n in small.notes)


def _big_class(methods: int = 400) -> str:
    body = "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(methods))
    return ("import math\n\n\nclass Shape:\n    \"\"\"A shape.\"\"\"\n\n"
            "    def area(self):\n        \"\"\"The area.\"\"\"\n        return 0.0\n\n"
            + body + "    def scaled_area(self, k):\n        \"\"\"area() times k squared."
            "\"\"\"\n        pass\n")


def test_a_cut_off_method_s_signature_stays_inside_its_class():
    prompt = build_prompt(BodyRequest(_big_class(), "Shape.scaled_area"), FIM_ONLY, "plain",
                          max_context_tokens=200)
    head = prompt.text.index("class Shape:")
    assert head < prompt.text.index("    def area(self):") and "return 0.0" not in prompt.text
    ast.parse(prompt.prefill + "        return 1.0\n")


def test_a_chat_prompt_shows_a_chosen_context_once_and_a_whole_file_twice():
    """Shown twice (user's turn and opened reply) a large module's context doubled the time to the
    first candidate; a file that fits whole keeps the form measured on HumanEval."""
    deep = build_prompt(BodyRequest(_big_class(), "Shape.scaled_area"), CHAT, "chat",
                        max_context_tokens=400)
    opening = 'class Shape:\n    def scaled_area(self, k):\n        """area() times k squared."""\n'
    assert deep.prefill == opening and deep.text.endswith("```python\n" + opening)
    assert deep.text.count("def scaled_area") == 1 and deep.text.count("def m399(") == 1
    assert "Below is code from the module above the Python function `scaled_area`" in deep.text
    assert any("shown once" in n for n in deep.notes)
    small = build_prompt(BodyRequest(SOURCE, "area"), CHAT, "chat")
    assert small.text.count("def area(") == 2 and not any("shown once" in n for n in small.notes)
    assert small.prefill.startswith("import math\n")


@pytest.mark.slow
def test_a_chat_reply_opened_on_the_function_alone_is_its_body(qwen):
    """The once-shown form (a large module): the real model's reply continues the opened method
    with an indented body and stops."""
    from budgetpass.generation.types import SamplingParams

    model, info = qwen
    text = _big_class()
    prompt = build_prompt(BodyRequest(text, "Shape.scaled_area"), info, "chat",
                          max_context_tokens=400)
    assert any("shown once" in n for n in prompt.notes)
    result = model.generate(prompt.text, 1, SamplingParams(temperature=0.0, max_tokens=120,
                                                           stop=prompt.stops))
    reply = result.completions[0]
    assert reply.finish_reason == "stop" and reply.text.startswith("        "), reply.text
    site = locate_function(text, "Shape.scaled_area")
    body = normalize_body(reply.text, site)
    assert body.usable, reply.text
    ast.parse(splice_body(text, site, body.text))


def test_every_method_of_a_large_real_module_gets_a_prompt_that_parses():
    """argparse (2,600 lines, classes with cut-off methods, multi-line imports): whatever the
    context keeps, the code a reply continues is a module a body completes, in every style."""
    import argparse

    path = Path(argparse.__file__)
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] + [
        f"{c.name}.{m.name}" for c in tree.body if isinstance(c, ast.ClassDef)
        for m in c.body if isinstance(m, ast.FunctionDef)]
    names = [n for n in names if names.count(n) == 1][::6]
    assert len(names) >= 20
    for name in names:
        for model, style in ((CHAT, "chat"), (FIM_ONLY, "plain")):
            prompt = build_prompt(BodyRequest(text, name, path, path.parent), model, style,
                                  max_context_tokens=512)
            ast.parse(prompt.prefill + prompt.site.body_indent + "pass\n")
            if not any("alone take" in note for note in prompt.notes):
                assert prompt.context_tokens <= (256 if style == "chat" else 512), name
