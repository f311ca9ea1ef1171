"""The one selection step: by the tests when there are any, else by the rankers (then the answer
is unverified); and the order a completion at the cursor shows its proposals in."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from budgetpass.verify.select import (
    RankInput,
    TestedCandidate,
    choose_tested,
    rank_by_mean_logprob,
    rank_candidates,
    ranking_inputs,
    reviewer_scores,
)

from .report import Candidate, Event, SolveError
from .target import Target

# Rankers that run candidates in the sandbox, and those that use reviewer scores.
EXECUTED = ("execution_agreement", "doctest", "combined")
REVIEWED = ("reviewer", "combined")


@dataclass(frozen=True)
class Choice:
    status: str  # passed | partial | ranked | failed
    selected: int | None
    message: str
    rankings: dict = field(default_factory=dict)  # ranker name -> Ranking (no-test requests)
    ranked_by: str | None = None  # the ranker whose order picked (no-test requests)


def choose(candidates: list[Candidate], target: Target, node_ids: tuple[str, ...],
           rankers: tuple[str, ...], lend_worker, emit, model=None,
           deadline: float | None = None) -> Choice:
    """The one selection step, once every candidate is in: the tests decide when there are any,
    else the rankers (``lend_worker``: a started worker, lent for execution-based ones; ``model``:
    the backend, for reviewer scores). With a ``deadline`` (inline completion) the ranking keeps
    to it: no reviewer scores (a scoring pass per candidate takes seconds on a CPU) and no probe
    run after it."""
    usable = rank_by_mean_logprob([c for c in candidates if c.parses], lambda c: c.mean_logprob,
                                  lambda c: len(c.body))
    if not usable:
        return Choice("failed", None, f"none of {len(candidates)} candidates parses")
    if node_ids and not any(c.run is not None for c in usable):  # the deadline came first
        return Choice("ranked", usable[0].index,
                      f"none of {len(candidates)} candidates was tested before the time limit: "
                      f"candidate {usable[0].index + 1} by mean log-probability; UNVERIFIED")
    tested = [c for c in usable if c.run is not None]
    if node_ids and all(c.run.never_called for c in tested):
        # The selected tests pass whatever the body is, without calling it: rank, unverified.
        return _rank_candidates(
            usable, candidates, target, rankers, lend_worker, emit,
            None if deadline is not None else model, deadline,
            why=f"the {len(node_ids)} selected tests pass without calling {target.function}, "
                "so they cannot judge it")
    if node_ids:
        return Choice(*_tested_outcome(usable, candidates, node_ids))
    if target.kind != "whole_body" or not target.function:  # part of a line: log-prob only
        return Choice("ranked", usable[0].index,
                      f"{len(usable)} distinct proposals by mean log-probability; UNVERIFIED")
    return _rank_candidates(usable, candidates, target, rankers, lend_worker, emit,
                            None if deadline is not None else model, deadline)


def _tested_outcome(usable, candidates, node_ids):
    """(status, selected index, message) by the tests' results (see select.choose_tested)."""
    tested = [TestedCandidate(c.index, c.mean_logprob, len(c.body), c.run.n_passed, c.run.passed)
              for c in usable if c.run is not None]
    status, choice = choose_tested(tested)
    n = len(node_ids)
    if status == "passed":
        untested = sum(c.run is None for c in usable)
        undecoded = sum(not c.decoded for c in candidates)
        notes = ([f"{untested} not tested"] if untested else []) + (
            [f"{undecoded} not decoded to the end"] if undecoded else [])
        return ("passed", choice.index,
                f"candidate {choice.index + 1} of {len(candidates)} passes all {n} selected tests"
                + (f" ({', '.join(notes)}: stopped at the first pass)" if notes else ""))
    if status == "partial":
        return ("partial", choice.index,
                (f"PARTIAL: no candidate passes all {n} selected tests; candidate "
                f"{choice.index + 1} passes the most ({choice.n_passed} of {n}); review the failures"))
    setup = {c.run.setup_failure for c in usable if c.run is not None}
    if len(setup) == 1 and (why := setup.pop()) is not None:
        return ("failed", None, (
            f"the project's tests did not start, so no candidate could be judged: "
            f"{why.splitlines()[0]}. Fix the test set-up (e.g. install what the tests import in "
            "the interpreter they run under: --python / the tests.python setting) and try again"))
    return ("failed", None, (f"none of {len(candidates)} candidates passes any of the {n} "
                            "selected tests; try a larger budget or look at the failures"))


def _rank_candidates(usable, candidates, target: Target, rankers, lend_worker, emit, model,
                     deadline, why: str = "no tests reference this function") -> Choice:
    """No tests: rankers order the candidates; the answer is UNVERIFIED."""
    function = target.function
    examples = ranking_inputs(target.text, function, target.project)
    inputs = [RankInput(c.index, target.compose(c.body), c.mean_logprob, len(c.body))
              for c in usable]
    emit(Event("test", 0, len(usable), f"ranking {len(usable)} candidates"))
    in_time = deadline is None or time.monotonic() < deadline
    executed = examples and in_time and any(r in EXECUTED for r in rankers)
    worker = lend_worker() if executed else None
    reviewer = {}
    if model is not None and any(r in REVIEWED for r in rankers):
        emit(Event("test", 0, len(usable), "reviewer scores"))
        reviewer = reviewer_scores(model, inputs, function)
    try:
        rankings = rank_candidates(inputs, function, rankers, worker, target.rel_file, examples,
                                   reviewer, deadline, original=target.text)
    except ValueError as exc:
        raise SolveError(str(exc)) from None
    emit(Event("test", len(usable), len(usable), "ranked"))
    usable_rankings = [rankings[n] for n in rankers if rankings.get(n)]
    # A ranker that had nothing to go on (no inputs) gives way to the next one.
    for ranking in sorted(usable_rankings, key=lambda r: r.fallback):
        name = ranking.name
        if ranking.order:
            best = ranking.order[0]
            how = f"{name}" + (f": {ranking.note}" if ranking.note else "")
            return Choice("ranked", best,
                          (f"{why}: picked candidate {best + 1} of "
                           f"{len(candidates)} by {how}; UNVERIFIED, review it"), rankings, name)
    return Choice("failed", None, "no tests found and no ranker could order the candidates",
                  rankings)


def proposals(candidates: list[Candidate], choice_order: Sequence[int] = ()) -> list[Candidate]:
    """Distinct usable candidates for the cursor: passing first, then untested (or tested by
    tests that never called it), then failing;
    within each, in the selection step's order (``choice_order``: the indices its ranker put
    first, without tests), then by mean log-probability (ties: shorter)."""
    best: dict[str, Candidate] = {}
    for cand in rank_by_mean_logprob([c for c in candidates if c.parses],
                                     lambda c: c.mean_logprob, lambda c: len(c.body)):
        best.setdefault(cand.body, cand)
    place = {index: n for n, index in enumerate(choice_order)}
    order = sorted(best.values(), key=lambda c: place.get(c.index, len(place)))
    return sorted(order, key=lambda c: 0 if c.run is not None and c.run.passed
                  else 1 if c.run is None or c.run.never_called else 2)
