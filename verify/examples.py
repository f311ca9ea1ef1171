"""Inputs to run candidates on when a function has no tests: its docstring's examples in any style
(the values generated from its type hints are in ``typed_inputs.py``).

Docstrings show examples in many ways: ``>>>`` blocks, prose (``f(x) -> y``, ``'ada lovelace' ->
'AL'``, "returns 3 for [1, 2]", ``f(x) == y``, "f(x) should return y"), Google / NumPy
``Examples:`` sections. Each becomes a ``ProbeInput``: a statement or expression to run (the call)
and the output a correct body prints for it (``want``; None when only the input is known). Only
Python's own tokenizer and ``ast`` read the text, and only literals are accepted as arguments and
expected values, so junk is skipped, never run and never a crash.
"""

from __future__ import annotations

import ast
import functools
import io
import math
import re
import tokenize
from dataclasses import dataclass

MAX_LINE = 400  # characters; longer prose lines are not searched for examples


@dataclass(frozen=True)
class ProbeInput:
    source: str  # a doctest-style statement or expression
    want: str | None  # the printed output a correct body gives; None for inputs without one
    origin: str = "docstring"  # docstring | prose | call_site | type_hints


def function_node(source: str, function: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    short = function.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == short:
            return node
    return None


def docstring_examples(source: str, function: str) -> list[ProbeInput]:
    """Every example the function's docstring shows, ``>>>`` blocks first, duplicates dropped."""
    node = function_node(source, function)
    if node is None:
        return []
    doc = ast.get_docstring(node) or ""
    return parse_examples(doc, node.name, _positional_count(node))


def parse_examples(doc: str, name: str, n_params: int = 1) -> list[ProbeInput]:
    found = doctest_blocks(doc)
    found += prose_examples(doc, name, n_params)
    unique: dict[str, ProbeInput] = {}
    for example in found:
        unique.setdefault(example.source.strip(), example)
    return list(unique.values())


# --- >>> blocks ---------------------------------------------------------------------------------


def doctest_blocks(doc: str) -> list[ProbeInput]:
    """``>>>`` examples (``...`` continuations; the output runs to a blank line or the next
    ``>>>``). Indentation need not be consistent, unlike doctest's own parser."""
    examples = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped.startswith(">>>"):
            i += 1
            continue
        source = [stripped[3:].removeprefix(" ")]
        i += 1
        while i < len(lines) and lines[i].strip().startswith("..."):
            source.append(lines[i].strip()[3:].removeprefix(" "))
            i += 1
        want = []
        while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>"):
            want.append(lines[i].strip())
            i += 1
        text = "\n".join(source) + "\n"
        if _compiles(text):
            examples.append(ProbeInput(text, "\n".join(want), "docstring"))
    return examples


def _compiles(text: str) -> bool:
    try:
        compile(text, "<example>", "single", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError):
        return False
    return True


# --- prose --------------------------------------------------------------------------------------

# What may stand between a call (or an input) and its result.
_LINK = re.compile(
    r"^\s*(?:#\s*)?(?:(?:=+>|-+>|→|⇒|==|=|:|,)\s*)?"
    r"(?:(?:should|will|must)\s+(?:return|give|be|output)|returns?|gives?|yields?|outputs?"
    r"|evaluates\s+to|is)?\s*(?::\s*)?", re.IGNORECASE)
_ARROW = re.compile(r"\s*(?:=+>|-+>|→|⇒)\s*")
_RETURNS_FOR = re.compile(
    r"\b(?:should\s+return|returns?|gives?|yields?|outputs?)\s+(?P<out>.+?)\s+"
    r"(?:for|when\s+given|given|on|with)\s+(?:the\s+)?(?:input\s+)?(?P<in>.+)", re.IGNORECASE)
_FOR_PARAM = re.compile(
    r"\bfor\s+(?P<param>[A-Za-z_]\w*)\s*=\s*(?P<in>.+?)\s*,?\s*(?:then\s+)?(?:the\s+)?"
    r"(?:output|result|answer|return\s+value)\s+(?:should\s+be|is|will\s+be)\s+(?P<out>.+)",
    re.IGNORECASE)
_INPUT_OUTPUT = re.compile(r"\binput\s*[:=]\s*(?P<in>.+?)\s+output\s*[:=]\s*(?P<out>.+)",
                           re.IGNORECASE)
_PROSE_WORDS = {"true": "True", "false": "False", "none": "None", "null": "None"}


def prose_examples(doc: str, name: str, n_params: int = 1) -> list[ProbeInput]:
    """Examples written as text: calls with a result, ``input -> output``, "returns Y for X",
    "for x = X ... the output should be Y", "Input: X Output: Y"."""
    found = []
    lines = [line.strip().lstrip("*-•").strip() for line in doc.splitlines()]
    lines = [line for line in lines if not line.startswith((">>>", "..."))]
    joined = [f"{a} {b}" for a, b in zip(lines, lines[1:]) if a and b]  # "Input: .. \n Output: .."
    for line in lines:
        if not line or len(line) > MAX_LINE:
            continue
        calls = list(_calls_with_results(line, name))
        found += calls
        if calls:
            continue
        found += _arrow_examples(line, name, n_params)
        found += _pattern_examples(line, name, n_params)
    for line in joined:
        if len(line) <= MAX_LINE and _INPUT_OUTPUT.search(line) and not _INPUT_OUTPUT.search(
                line.split(" ", 1)[0]):
            found += _pattern_examples(line, name, n_params, only=_INPUT_OUTPUT)
    return found


def _calls_with_results(line: str, name: str):
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", line):
        end = _closing_paren(line, match.end() - 1)
        if end is None:
            continue
        call = _literal_call(line[match.start():end + 1], name)
        if call is None:
            continue
        rest = line[end + 1:]
        link = _LINK.match(rest)
        if not link or not link.group(0).strip():
            continue  # a call mentioned in prose, not an example
        want = _literal_prefix(rest[link.end():])
        if want is not None:
            yield ProbeInput(call + "\n", want, "prose")


def _arrow_examples(line: str, name: str, n_params: int) -> list[ProbeInput]:
    """``'ada lovelace' -> 'AL'``: an input literal, an arrow, the result."""
    found = []
    for arrow in _ARROW.finditer(line):
        args = _literal_suffix(line[:arrow.start()])
        want = _literal_prefix(line[arrow.end():])
        if args is not None and want is not None:
            call = _call_text(name, args, n_params)
            if call is not None:
                found.append(ProbeInput(call + "\n", want, "prose"))
    return found


def _pattern_examples(line: str, name: str, n_params: int, only=None) -> list[ProbeInput]:
    found = []
    for pattern in (only,) if only else (_RETURNS_FOR, _FOR_PARAM, _INPUT_OUTPUT):
        match = pattern.search(line)
        if not match:
            continue
        want = _literal_prefix(match.group("out"))
        if want is None:
            continue
        raw_in = match.group("in")
        if "param" in match.groupdict():
            value = _literal_prefix(raw_in)
            call = None if value is None else f"{name}({match.group('param')}={value})"
            if call is not None:
                call = _literal_call(call, name)
        else:
            value = _literal_prefix(raw_in)
            call = None if value is None else _call_text(name, value, n_params)
        if call is not None:
            found.append(ProbeInput(call + "\n", want, "prose"))
    return found


def _call_text(name: str, args: str, n_params: int) -> str | None:
    """``name(args)``; a tuple spreads over the parameters when the function takes that many."""
    try:
        value = ast.literal_eval(args)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, tuple) and n_params > 1 and len(value) == n_params:
        inner = args.strip()
        inner = inner[1:-1] if inner.startswith("(") and inner.endswith(")") else inner
        return _literal_call(f"{name}({inner})", name)
    return _literal_call(f"{name}({args})", name)


def _closing_paren(text: str, open_at: int) -> int | None:
    depth, quote, i = 0, None, open_at
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _prose_literals(text: str) -> str:
    """``true`` / ``false`` / ``null`` (as docstrings write them) as Python's names."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError, ValueError):
        return text
    if not any(t.type == tokenize.NAME and t.string.lower() in _PROSE_WORDS for t in tokens):
        return text
    out = [t._replace(string=_PROSE_WORDS.get(t.string.lower(), t.string))
           if t.type == tokenize.NAME else t for t in tokens]
    try:
        return tokenize.untokenize(out)
    except (ValueError, TypeError):
        return text


def _literal_value(text: str):
    """The value of a literal (arithmetic on numbers allowed: ``19 - 5 - 6``); raises ValueError."""
    text = text.strip()
    if not text or len(text) > MAX_LINE:
        raise ValueError("empty")
    try:
        tree = ast.parse(_prose_literals(text), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ValueError("not an expression") from exc
    return literal_node_value(tree.body)


def literal_node_value(node):
    """A literal's value (numbers may be added, subtracted, multiplied); ValueError if not one."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = literal_node_value(node.left), literal_node_value(node.right)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e12
               for v in (left, right)):
            return {ast.Add: left + right, ast.Sub: left - right,
                    ast.Mult: left * right}[type(node.op)]
        raise ValueError("arithmetic on non-numbers")
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError("not a literal") from exc


def _literal_prefix(text: str) -> str | None:
    """The printed form (repr) of the longest literal at the start of ``text``, if any."""
    text = text.strip()
    cuts = [m.start() for m in re.finditer(r"[\s.,;:)\]}]|$", text)]
    for end in sorted({c for c in cuts if c > 0} | {len(text)}, reverse=True):
        piece = text[:end].rstrip(" .,;:")
        if not piece:
            continue
        try:
            return repr(_literal_value(piece))
        except ValueError:
            continue
    return None


def _literal_suffix(text: str) -> str | None:
    """The source of the longest literal at the end of ``text`` (the input of ``x -> y``)."""
    text = text.rstrip()
    starts = [0] + [m.end() for m in re.finditer(r"[\s,:;(]", text)]
    for start in sorted(set(starts)):
        piece = text[start:].strip()
        if not piece:
            continue
        try:
            _literal_value(piece)
        except ValueError:
            continue
        if re.match(r"^[A-Za-z_]", piece) and piece not in ("True", "False", "None"):
            continue
        return _prose_literals(piece).strip()
    return None


def _literal_call(text: str, name: str) -> str | None:
    """``text`` as a call of ``name`` with literal arguments only, normalised; else None."""
    try:
        tree = ast.parse(_prose_literals(text.strip()), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == name):
        return None
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        if isinstance(arg, ast.Starred):
            return None
        try:
            literal_node_value(arg)
        except ValueError:
            return None
    if any(k.arg is None for k in call.keywords):
        return None
    return ast.unparse(call)


# --- matching outputs ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def outputs_match(output: str, want: str) -> bool:
    """Whether a printed output is the expected one: equal values when both are literals (floats
    within 1e-6), else equal text up to whitespace. A ``None`` result prints nothing."""
    output, want = output.strip(), want.strip()
    if output == want:
        return True
    try:
        got = ast.literal_eval(output) if output else None
        expected = ast.literal_eval(want) if want else None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return " ".join(output.split()) == " ".join(want.split())
    return _same(got, expected)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(
                a, bool) and not isinstance(b, bool):
            return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _positional_count(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    params = [*node.args.posonlyargs, *node.args.args]
    if params and params[0].arg in ("self", "cls"):
        params = params[1:]
    return len(params)
