"""Inline completions at a cursor: budget-matched samples, ranked, verified by tests when time allows.

The fast sibling of ``job.solve``: it reads the editor's text (not the file), never writes, and gives
up verification rather than latency: tests run only for a whole-body proposal, only while the
caller's time limit lasts. Pure of any editor protocol.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from budgetpass.generation.budget import Budget
from budgetpass.generation.inline import CursorContext, inline_prompt, tidy_inline
from budgetpass.generation.prompts import PromptTemplate
from budgetpass.generation.types import SamplingParams

from .discovery import find_tests
from .runner import CandidateRun, WarmWorker, WorkerError, default_python, find_project_root
from .sandbox import Limits
from .sandbox import probe as probe_sandbox
from .select import rank_by_mean_logprob

# One line: a few samples at most. The batched cost of k sequences grows with k on a CPU (about 2.5x
# for k=4), and a single line has to arrive while the user still looks at the cursor.
SINGLE_LINE_MAX_SAMPLES = 2
SINGLE_LINE_MAX_TOKENS = 24


@dataclass
class InlineCandidate:
    text: str  # to insert at the cursor
    mean_logprob: float
    run: CandidateRun | None = None

    @property
    def verified(self) -> bool:
        return self.run is not None and self.run.passed


@dataclass
class InlineResult:
    items: list[InlineCandidate]  # best first
    multiline: bool
    samples: int
    cancelled: bool
    seconds: float
    tests: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


def inline_completions(model, template: PromptTemplate, ctx: CursorContext, budget: Budget,
                       max_tokens: int, *, text: str, path: Path | None = None,
                       verify_within_ms: int = 0, sandbox: str = "auto",
                       limits: Limits | None = None, seed: int = 0,
                       should_stop: Callable[[], bool] | None = None,
                       pytest_args: tuple[str, ...] = ()) -> InlineResult:
    """Candidates for the cursor in ``ctx`` (made from ``text``, the editor's buffer)."""
    start = time.monotonic()
    if ctx.multiline:
        k, tokens = budget.samples, max_tokens
    else:
        k, tokens = min(budget.samples, SINGLE_LINE_MAX_SAMPLES), min(max_tokens, SINGLE_LINE_MAX_TOKENS)
    prompt = inline_prompt(ctx, template)
    sampling = SamplingParams(temperature=0.6 if k > 1 else 0.0, top_p=0.95, max_tokens=tokens,
                              stop=prompt.stops, seed=seed)
    generation = model.generate(prompt.text, k, sampling, should_stop=should_stop)
    cancelled = any(c.finish_reason == "cancelled" for c in generation.completions)
    if cancelled:
        return InlineResult([], ctx.multiline, k, True, time.monotonic() - start)
    unique: dict[str, InlineCandidate] = {}
    for completion in generation.completions:
        body = tidy_inline(completion.text, ctx)
        if body and (body not in unique or unique[body].mean_logprob < completion.mean_logprob):
            unique[body] = InlineCandidate(body, completion.mean_logprob)
    items = rank_by_mean_logprob(list(unique.values()), lambda c: c.mean_logprob,
                                 lambda c: len(c.text))
    result = InlineResult(items, ctx.multiline, k, False, 0.0)
    if ctx.multiline and items and path is not None and verify_within_ms > 0:
        _verify(result, ctx, text, path, start + verify_within_ms / 1000, sandbox, limits or Limits(),
                should_stop, pytest_args)
    result.seconds = time.monotonic() - start
    return result


def _verify(result: InlineResult, ctx: CursorContext, text: str, path: Path, deadline: float,
            sandbox: str, limits: Limits, should_stop, pytest_args: tuple[str, ...]) -> None:
    """Run the function's tests on the candidates in one warm worker (two at a time, best first)
    until one passes or time is up; whatever is still running then is stopped, untested."""
    project = find_project_root(path)
    try:
        rel_file = path.relative_to(project).as_posix()
    except ValueError:
        return
    result.tests = find_tests(project, ctx.function.qualname, target_file=path).node_ids
    if not result.tests:
        return
    remaining = deadline - time.monotonic()
    run_limits = Limits(**{**limits.__dict__, "wall_seconds": max(0.1, remaining)})
    try:
        worker = WarmWorker(project, probe_sandbox(sandbox), run_limits, default_python(project),
                            parallel=min(2, len(result.items)), pytest_args=pytest_args)
        worker.start()
    except (WorkerError, ValueError) as exc:
        result.notes.append(f"not verified: {exc}")
        return
    try:
        ids = {worker.submit(rel_file, text[:ctx.offset] + cand.text + text[ctx.offset:],
                             result.tests, original=text): cand for cand in result.items}
        done = 0
        while done < len(ids):
            remaining = deadline - time.monotonic()
            if remaining <= 0.02 or (should_stop and should_stop()):
                break
            finished = worker.next_result(timeout=min(remaining, 0.05))
            if finished is None:
                continue
            run_id, run = finished
            ids[run_id].run, done = run, done + 1
            if run.passed:
                break
        if done < len(ids) and not any(c.verified for c in result.items):
            result.notes.append(f"verified {done} of {len(ids)} before the inline time limit")
    finally:
        worker.close()
    # Passing first, then untested, then failing; ties keep the log-probability order.
    order = {id(c): i for i, c in enumerate(result.items)}
    result.items.sort(key=lambda c: (0 if c.verified else 1 if c.run is None else 2, order[id(c)]))
