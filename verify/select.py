"""Choosing one candidate: by tests when there are any, else by rank (and then it is unverified).

With tests: all selected tests pass -> among those, the highest mean log-probability (ties: the
shorter body); none passes all -> the one passing most tests (``partial``).

Without tests, rankers order the candidates that parse, after duplicates (same normalized AST) are
merged: ``mean_logprob`` (the paper's baseline), ``execution_agreement`` (run every candidate on
inputs from the docstring's examples, the project's call sites and the type hints, and prefer the
candidate whose outputs most other samples share: MBR-exec / AlphaCode's clustering),
``doctest`` (how many of the docstring's examples, in any style, a candidate reproduces),
``reviewer`` (Coder-Reviewer: how likely the model finds the docstring given the code, plus the
candidate's own mean log-probability) and ``combined``, the default: examples passed, then
agreement, then reviewer. Execution happens in the sandbox's warm worker; outputs come back as the
failure messages of a generated probe test, over the same nonce-checked report pipe.
"""

from __future__ import annotations

import ast
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from budgetpass.generation.locate import body_ast, find_function

from .discovery import iter_python_files, module_name, package_root
from .examples import ProbeInput, docstring_examples, function_node, outputs_match
from .session import TestSession
from .typed_inputs import typed_inputs

T = TypeVar("T")

__all__ = ["ProbeInput", "docstring_examples", "typed_inputs"]  # homes: examples.py, typed_inputs.py

RANKERS = ("combined", "execution_agreement", "doctest", "reviewer", "mean_logprob")
MAX_INPUTS = 16
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
    signals: Signals | None = None  # the evidence per candidate (``combined``)

    def to_json(self) -> dict:
        data = {"name": self.name, "order": self.order,
                "scores": {str(k): round(v, 4) for k, v in self.scores.items()}, "note": self.note,
                "fallback": self.fallback}
        if self.signals is not None:
            data["signals"] = {
                name: {str(k): round(v, 4) for k, v in getattr(self.signals, name).items()}
                for name in ("examples", "agreement", "cluster", "reviewer", "logprob")}
        return data


def normalized_ast(source: str, function: str) -> str | None:
    """The target function's AST without docstring, comments or positions; None if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    site = find_function(source, function)
    if site is None:
        return ast.dump(tree, annotate_fields=False)
    return "\n".join(ast.dump(stmt, annotate_fields=False) for stmt in body_ast(source, site))


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


def call_site_inputs(project: Path | None, function: str, files: Sequence[Path] = ()) -> list[ProbeInput]:
    """Calls of the function with literal arguments found in the project's Python files."""
    short = function.split(".")[-1]
    found: list[ProbeInput] = []
    paths = list(files)
    if project is not None:
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
                found.append(ProbeInput(text + "\n", None, "call_site"))
    return found


def ranking_inputs(source: str, function: str, project: Path | None = None,
                   limit: int = MAX_INPUTS) -> list[ProbeInput]:
    """What the execution rankers run: the docstring's examples (with expected outputs), the
    project's literal call sites, then values generated from the type hints; duplicates dropped."""
    examples = docstring_examples(source, function)
    found = examples + call_site_inputs(project, function)
    found += typed_inputs(source, function, examples=examples)
    unique: dict[str, ProbeInput] = {}
    for item in found:
        unique.setdefault(item.source.strip(), item)
    return list(unique.values())[:limit]


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


def probe_outputs(worker, rel_file: str, candidates: Sequence[RankInput],
                  examples: Sequence[ProbeInput], deadline: float | None = None,
                  original: str | None = None) -> dict[int, list[str] | None]:
    """Each candidate's outputs on ``examples`` (None if its run gave none), in the warm worker;
    a candidate the ``deadline`` (``time.monotonic()``) left unrun has no entry. ``original``:
    the trusted text the candidates were made from (``TestSession``)."""
    root = Path(worker.project)
    target = root / rel_file
    # Beside the folder pytest puts on sys.path for the target: its module name imports from there.
    folder = package_root(root, target).relative_to(root).as_posix()
    name = ("" if folder == "." else folder + "/") + f"test_budgetpass_probe_{secrets.token_hex(4)}.py"
    probe = PROBE_TEST.format(module=module_name(root, target),
                              examples=[e.source for e in examples], chars=OUTPUT_CHARS)
    session = TestSession(worker, rel_file, (name,), stop_at_first_pass=False,
                          deadline=deadline, extra_files={name: probe}, original=original)
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


@dataclass
class Signals:
    """The no-test evidence about each distinct candidate (index -> value), for ranking and report."""

    examples: dict[int, float] = field(default_factory=dict)  # docstring examples reproduced
    agreement: dict[int, float] = field(default_factory=dict)  # samples agreeing, per input (mean)
    cluster: dict[int, float] = field(default_factory=dict)  # samples with identical outputs
    reviewer: dict[int, float] = field(default_factory=dict)  # mean log p(docstring | code)
    logprob: dict[int, float] = field(default_factory=dict)  # mean log p(code | prompt)
    n_wanted: int = 0  # inputs with an expected output
    n_inputs: int = 0
    n_samples: int = 0  # samples behind the distinct candidates (duplicates counted)


def execution_signals(indices: Sequence[int], outputs: dict[int, list[str] | None],
                      wants: Sequence[str | None], copies: dict[int, int] | None = None
                      ) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """(examples passed, agreement, cluster size) per candidate from its outputs on the inputs.

    Agreement is MBR-exec's: for each input, how many samples (duplicates count, the candidate
    itself included) gave the same output, averaged over the inputs; cluster size is AlphaCode's:
    samples with the same outputs on every input. A candidate whose run gave nothing scores 0.
    """
    import numpy as np

    copies = copies or {}
    n = len(wants)
    zero = {i: 0.0 for i in indices}
    ran = [i for i in indices if outputs.get(i) is not None]
    if not ran or n == 0:
        return dict(zero), dict(zero), dict(zero)
    codes: dict[tuple[int, str], int] = {}
    table = np.empty((len(ran), n), dtype=np.int64)
    for row, i in enumerate(ran):
        got = outputs[i]
        for k in range(n):  # an output the run did not give matches nothing
            table[row, k] = (codes.setdefault((k, got[k]), len(codes)) if k < len(got)
                             else -1 - row * n - k)
    weight = np.array([copies.get(i, 1) for i in ran], dtype=np.float64)
    same = (table[:, None, :] == table[None, :, :]).mean(axis=2)  # ran x ran, fraction of inputs
    agreeing = same @ weight
    identical = (same == 1.0) @ weight
    passed, agreement, cluster = dict(zero), dict(zero), dict(zero)
    for row, i in enumerate(ran):
        got = outputs[i]
        passed[i] = float(sum(w is not None and k < len(got) and outputs_match(got[k], w)
                              for k, w in enumerate(wants)))
        agreement[i] = float(agreeing[row])
        cluster[i] = float(identical[row])
    return passed, agreement, cluster


def reviewer_order_score(signals: Signals, i: int) -> float:
    """Coder-Reviewer: log p(code | prompt) + log p(docstring | code), both per token."""
    return signals.logprob.get(i, float("-inf")) + signals.reviewer.get(i, 0.0)


def combined_key(signals: Signals, i: int) -> tuple:
    """The default no-test order, best first: docstring examples reproduced (the user's own
    statement of intent), then agreement with the other samples, then reviewer + log-prob."""
    return (-signals.examples.get(i, 0.0), -signals.agreement.get(i, 0.0),
            -reviewer_order_score(signals, i))


def combined_note(signals: Signals, best: int) -> str:
    """Which evidence chose ``best``, for the report's message."""
    parts = []
    if signals.n_inputs and signals.cluster:
        same = int(signals.cluster.get(best, 0))
        parts.append(f"agrees with {max(same - 1, 0)} of {signals.n_samples - 1} other candidates "
                     f"on {signals.n_inputs} inputs")
    if signals.n_wanted:
        parts.append(f"matches {int(signals.examples.get(best, 0))} of {signals.n_wanted} "
                     "docstring examples")
    if signals.reviewer:
        parts.append(f"reviewer {signals.reviewer.get(best, float('nan')):.3f}, "
                     f"log-prob {signals.logprob.get(best, float('nan')):.3f}")
    return "; ".join(parts) or "mean log-prob only (no outputs, no reviewer scores)"


def rank_candidates(inputs: Sequence[RankInput], function: str, rankers: Sequence[str],
                    worker=None, rel_file: str = "", examples: Sequence[ProbeInput] = (),
                    reviewer: dict[int, float] | None = None, deadline: float | None = None,
                    original: str | None = None) -> dict[str, Ranking]:
    """Every requested ranker's order over the distinct parsing candidates.

    ``worker`` (a started WarmWorker of the project) is needed for the execution-based rankers;
    ``examples`` are the inputs they run (docstring examples first, then call sites and generated
    ones); ``reviewer`` maps candidate index -> mean log p(docstring | code) (``reviewer_scores``).
    No probe run starts or counts after ``deadline`` (``time.monotonic()``); if it cuts them
    short, no execution signal is used (a candidate left unrun would look like a wrong one).
    ``original`` is the trusted text of ``rel_file`` the candidates were made from.
    """
    unknown = [r for r in rankers if r not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; known: {', '.join(RANKERS)}")
    pool, merged = distinct(inputs, function)
    baseline = [c.index for c in pool]  # already by mean log-prob, ties shorter
    copies = {i: 1 + sum(kept == i for kept in merged.values()) for i in baseline}
    signals = Signals(logprob={c.index: c.mean_logprob for c in pool},
                      reviewer={i: v for i, v in (reviewer or {}).items() if i in copies},
                      n_samples=sum(copies.values()))
    results: dict[str, Ranking] = {}
    if "mean_logprob" in rankers:
        results["mean_logprob"] = Ranking("mean_logprob", baseline, dict(signals.logprob))
    if "reviewer" in rankers:
        if signals.reviewer:
            score = {i: reviewer_order_score(signals, i) for i in baseline}
            results["reviewer"] = Ranking("reviewer", sorted(baseline, key=lambda i: -score[i]),
                                          score, "log p(docstring | code) + mean log-prob")
        else:
            results["reviewer"] = Ranking("reviewer", baseline, {}, "no reviewer scores "
                                          "(the backend cannot score text): mean log-prob order",
                                          fallback=True)
    if not {"execution_agreement", "doctest", "combined"} & set(rankers):
        return results
    examples = list(examples)[:MAX_INPUTS]
    outputs: dict[int, list[str] | None] = {}
    note = ""
    if not examples:
        note = "no inputs found (no docstring examples, literal call sites or type hints)"
    elif deadline is not None and time.monotonic() >= deadline:
        note = "no execution signals: the time limit had passed"
    elif worker is None:
        note = "no sandbox worker"
    elif pool:
        outputs = probe_outputs(worker, rel_file, pool, examples, deadline, original)
        if len(outputs) < len(pool):
            outputs = {}
            note = "no execution signals: the time limit came before every candidate ran"
    wants = [e.want for e in examples]
    if outputs:
        signals.examples, signals.agreement, signals.cluster = execution_signals(
            baseline, outputs, wants, copies)
        signals.n_inputs, signals.n_wanted = len(examples), sum(w is not None for w in wants)
    if "execution_agreement" in rankers:
        if outputs:
            score = signals.agreement
            behaviours = len({json.dumps(o) for o in outputs.values() if o is not None})
            results["execution_agreement"] = Ranking(
                "execution_agreement", sorted(baseline, key=lambda i: -score[i]), dict(score),
                f"{behaviours} distinct behaviours on {len(examples)} inputs")
        else:
            results["execution_agreement"] = Ranking(
                "execution_agreement", baseline, {},
                (note or "no candidate produced outputs") + ": mean log-prob order", fallback=True)
    if "doctest" in rankers:
        if outputs and signals.n_wanted:
            score = signals.examples
            results["doctest"] = Ranking("doctest", sorted(baseline, key=lambda i: -score[i]),
                                         dict(score),
                                         f"{signals.n_wanted} docstring examples with expected output")
        else:
            results["doctest"] = Ranking("doctest", baseline, {},
                                         (note or "no docstring examples with expected output")
                                         + ": mean log-prob order", fallback=True)
    if "combined" in rankers:
        order = sorted(baseline, key=lambda i: combined_key(signals, i))
        scores = {i: signals.agreement.get(i, 0.0) for i in baseline}
        said = combined_note(signals, order[0]) if order else ""
        results["combined"] = Ranking(
            "combined", order, scores, "; ".join(p for p in (note, said) if p),
            fallback=not outputs and not signals.reviewer,
            signals=signals)
    return results


def reviewer_prompt(source: str, function: str) -> tuple[str, str] | None:
    """(prompt, continuation) for Coder-Reviewer scoring: the candidate's function without its
    docstring, then its docstring as the text to score; None without a docstring."""
    node = function_node(source, function)
    if node is None:
        return None
    doc = ast.get_docstring(node, clean=True)
    if not doc or not node.body:
        return None
    lines = source.splitlines()
    first = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
    skip = range(node.body[0].lineno - 1, node.body[0].end_lineno)
    code = "\n".join(line for n, line in enumerate(lines[first:node.end_lineno], first)
                     if n not in skip)
    return (f"{code.rstrip()}\n\n\n# A docstring that describes {node.name} above:\n\"\"\"",
            f"{doc.strip()}\n\"\"\"")


def reviewer_scores(model, inputs: Sequence[RankInput], function: str) -> dict[int, float]:
    """Mean log p(docstring | code) per candidate, when the backend can score text (llama.cpp's
    ``score``); {} otherwise or when there is no docstring. Same docstring for every candidate,
    so the means compare like sums."""
    score = getattr(model, "score", None)
    if score is None:
        return {}
    scores: dict[int, float] = {}
    for cand in inputs:
        pair = reviewer_prompt(cand.source, function)
        if pair is None:
            continue
        logprobs = score(*pair)
        if logprobs:
            scores[cand.index] = sum(logprobs) / len(logprobs)
    return scores
