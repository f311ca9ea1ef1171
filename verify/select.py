"""Choosing one candidate: by tests when there are any, else by rank (and then it is unverified).

With tests: all selected tests pass -> among those, the highest mean log-probability (ties: the
shorter body); none passes all -> the one passing most tests (``partial``).

Without tests, rankers order the candidates that parse, after duplicates (same normalized AST) are
merged: ``mean_logprob`` (the paper's baseline), ``execution_agreement`` (run every candidate on
inputs from the docstring's examples and the project's call sites, cluster by outputs, prefer the
largest cluster: MBR-exec / AlphaCode) and ``doctest`` (how many of the docstring's examples a
candidate reproduces). Execution happens in the sandbox's warm worker; outputs come back as the
failure messages of a generated probe test, over the same nonce-checked report pipe.
"""

from __future__ import annotations

import ast
import doctest
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .session import TestSession

T = TypeVar("T")

RANKERS = ("execution_agreement", "doctest", "mean_logprob")
MAX_INPUTS = 12
OUTPUT_CHARS = 100


def rank_by_mean_logprob(candidates: Sequence[T], key_logprob, key_length) -> list[T]:
    """Best first: higher mean token log-probability, then shorter (the paper's no-test baseline)."""
    return sorted(candidates, key=lambda c: (-key_logprob(c), key_length(c)))


@dataclass(frozen=True)
class TestedCandidate:
    __test__ = False  # not a pytest class

    index: int
    mean_logprob: float
    length: int
    n_passed: int
    passed: bool  # every selected test passed


def choose_tested(candidates: Sequence[TestedCandidate]) -> tuple[str, TestedCandidate | None]:
    """(passed | partial | failed, the choice)."""
    passing = [c for c in candidates if c.passed]
    if passing:
        return "passed", rank_by_mean_logprob(passing, lambda c: c.mean_logprob,
                                              lambda c: c.length)[0]
    some = [c for c in candidates if c.n_passed > 0]
    if some:
        best = max(c.n_passed for c in some)
        top = [c for c in some if c.n_passed == best]
        return "partial", rank_by_mean_logprob(top, lambda c: c.mean_logprob, lambda c: c.length)[0]
    return "failed", None


@dataclass(frozen=True)
class RankInput:
    index: int
    source: str  # the whole module with this candidate spliced in
    mean_logprob: float
    length: int


@dataclass
class Ranking:
    name: str
    order: list[int]  # candidate indices, best first (duplicates and non-parsing left out)
    scores: dict[int, float] = field(default_factory=dict)
    note: str = ""
    fallback: bool = False  # it had nothing to go on: ``order`` is just the log-prob order

    def to_json(self) -> dict:
        return {"name": self.name, "order": self.order,
                "scores": {str(k): round(v, 4) for k, v in self.scores.items()}, "note": self.note,
                "fallback": self.fallback}


def normalized_ast(source: str, function: str) -> str | None:
    """The target function's AST without docstring, comments or positions; None if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    short = function.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == short:
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(
                    getattr(body[0], "value", None), ast.Constant) and isinstance(
                    body[0].value.value, str):
                body = body[1:]
            return "\n".join(ast.dump(stmt, annotate_fields=False) for stmt in body)
    return ast.dump(tree, annotate_fields=False)


def distinct(inputs: Sequence[RankInput], function: str) -> tuple[list[RankInput], dict[int, int]]:
    """Parsing candidates with duplicates merged into their best-ranked copy, and dup -> kept."""
    kept: dict[str, RankInput] = {}
    merged: dict[int, int] = {}
    for cand in rank_by_mean_logprob(list(inputs), lambda c: c.mean_logprob, lambda c: c.length):
        key = normalized_ast(cand.source, function)
        if key is None:
            continue
        if key in kept:
            merged[cand.index] = kept[key].index
        else:
            kept[key] = cand
    return list(kept.values()), merged


@dataclass(frozen=True)
class ProbeInput:
    source: str  # a doctest-style statement or expression
    want: str | None  # the docstring's expected output; None for inputs from call sites


def docstring_examples(source: str, function: str) -> list[ProbeInput]:
    """The ``>>>`` examples of the function's docstring (HumanEval prompts have them)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    short = function.split(".")[-1]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == short:
            doc = ast.get_docstring(node) or ""
            try:
                examples = doctest.DocTestParser().get_examples(doc)
            except ValueError:
                return []
            return [ProbeInput(e.source, e.want) for e in examples]
    return []


def call_site_inputs(project: Path | None, function: str, files: Sequence[Path] = ()) -> list[ProbeInput]:
    """Calls of the function with literal arguments found in the project's Python files."""
    short = function.split(".")[-1]
    found: list[ProbeInput] = []
    paths = list(files)
    if project is not None:
        from .discovery import iter_python_files

        paths += list(iter_python_files(project))
    for path in paths:
        try:
            tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        except (SyntaxError, OSError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name != short or isinstance(node.func, ast.Attribute):
                continue
            try:
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    ast.literal_eval(arg)
            except ValueError:
                continue
            if any(k.arg is None for k in node.keywords):
                continue
            text = ast.unparse(node)
            if all(p.source.strip() != text for p in found):
                found.append(ProbeInput(text + "\n", None))
    return found


PROBE_TEST = '''"""Generated by budgetpass: runs examples, reports outputs as this test's failure message."""
import contextlib
import io
import json
import signal

import pytest

import {module} as _module

EXAMPLES = {examples!r}


def _timeout(signum, frame):
    raise TimeoutError("example timed out")


def test_budgetpass_probe():
    namespace = dict(vars(_module))
    outputs = []
    signal.signal(signal.SIGALRM, _timeout)
    for source in EXAMPLES:
        buffer = io.StringIO()
        signal.alarm(2)
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(source, "<example>", "single"), namespace)
            outputs.append(buffer.getvalue()[:{chars}])
        except BaseException as exc:  # noqa: BLE001
            outputs.append("raised " + type(exc).__name__)
        finally:
            signal.alarm(0)
    pytest.fail("BUDGETPASS-PROBE " + json.dumps(outputs), pytrace=False)
'''


def module_name(rel_file: str) -> str:
    parts = rel_file[:-3].split("/")
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def probe_outputs(worker, rel_file: str, candidates: Sequence[RankInput],
                  examples: Sequence[ProbeInput]) -> dict[int, list[str] | None]:
    """Each candidate's outputs on ``examples`` (None if its run gave none), in the warm worker."""
    name = f"test_budgetpass_probe_{secrets.token_hex(4)}.py"
    probe = PROBE_TEST.format(module=module_name(rel_file),
                              examples=[e.source for e in examples], chars=OUTPUT_CHARS)
    session = TestSession(worker, rel_file, (name,), stop_at_first_pass=False,
                          extra_files={name: probe})
    for cand in candidates:
        session.add(str(cand.index), cand.source)
    outputs: dict[int, list[str] | None] = {}
    for key, run in session.wait().items():
        values = None
        for outcome in run.outcomes:
            marker = outcome.message.find("BUDGETPASS-PROBE ")
            if marker >= 0:
                try:
                    values = json.loads(outcome.message[marker + len("BUDGETPASS-PROBE "):])
                except ValueError:
                    values = None
        outputs[int(key)] = values if isinstance(values, list) else None
    return outputs


def _matches(output: str, want: str) -> bool:
    return output.strip() == want.strip()


def rank_candidates(inputs: Sequence[RankInput], function: str, rankers: Sequence[str],
                    worker=None, rel_file: str = "", examples: Sequence[ProbeInput] = ()
                    ) -> dict[str, Ranking]:
    """Every requested ranker's order over the distinct parsing candidates.

    ``worker`` (a started WarmWorker of the project) is needed for the execution-based rankers;
    ``examples`` are the inputs they run (docstring examples first, then call sites).
    """
    unknown = [r for r in rankers if r not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; known: {', '.join(RANKERS)}")
    pool, _ = distinct(inputs, function)
    baseline = [c.index for c in pool]  # already by mean log-prob, ties shorter
    logprob = {c.index: c.mean_logprob for c in pool}
    results: dict[str, Ranking] = {}
    if "mean_logprob" in rankers:
        results["mean_logprob"] = Ranking("mean_logprob", baseline, dict(logprob))
    executed = [r for r in rankers if r in ("execution_agreement", "doctest")]
    if not executed:
        return results
    examples = list(examples)[:MAX_INPUTS]
    outputs: dict[int, list[str] | None] = {}
    note = ""
    if not examples:
        note = "no inputs found (no docstring examples or literal call sites): mean log-prob order"
    elif worker is None:
        note = "no sandbox worker: mean log-prob order"
    elif pool:
        outputs = probe_outputs(worker, rel_file, pool, examples)
    if "execution_agreement" in rankers:
        if outputs:
            signature = {i: json.dumps(o) if o is not None else None for i, o in outputs.items()}
            sizes: dict[str, int] = {}
            for sig in signature.values():
                if sig is not None:
                    sizes[sig] = sizes.get(sig, 0) + 1
            score = {i: float(sizes.get(signature.get(i), 0)) for i in baseline}
            order = sorted(baseline, key=lambda i: (-score[i], baseline.index(i)))
            results["execution_agreement"] = Ranking(
                "execution_agreement", order, score,
                f"{len(sizes)} distinct behaviours on {len(examples)} inputs")
        else:
            results["execution_agreement"] = Ranking("execution_agreement", baseline, {},
                                                     note or "no candidate produced outputs",
                                                     fallback=True)
    if "doctest" in rankers:
        wanted = [(k, e.want) for k, e in enumerate(examples) if e.want is not None]
        if outputs and wanted:
            score = {}
            for i in baseline:
                got = outputs.get(i) or []
                score[i] = float(sum(k < len(got) and _matches(got[k], want) for k, want in wanted))
            order = sorted(baseline, key=lambda i: (-score[i], baseline.index(i)))
            results["doctest"] = Ranking("doctest", order, score,
                                         f"{len(wanted)} docstring examples with expected output")
        else:
            results["doctest"] = Ranking("doctest", baseline, {},
                                         note or "no docstring examples with expected output",
                                         fallback=True)
    return results
