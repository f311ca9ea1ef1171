"""Rankers for choosing one sample without the hidden tests (the paper's no-test setting).

A ranker orders one task's samples best first. The list is a registry so rankers plug in by name;
each states what it reads. They are the product's rankers (verify.select): the same signal
functions (``execution_signals``, ``combined_key``) over evidence the bench stored once
(bench/signals.py: each program's outputs on the product's probe inputs, run in the sandbox, and its
reviewer score), so re-scoring never runs a candidate or a model. None of them reads the hidden
tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from budgetpass.verify.select import (
    Signals,
    combined_key,
    execution_signals,
    rank_by_mean_logprob,
    reviewer_order_score,
)


class RankedSample(Protocol):
    index: int
    body: str
    mean_logprob: float
    usable: bool  # parses and is not a stub: what app/choose.py would consider at all
    outputs: list[str] | None  # printed outputs on the task's probe inputs (None: no run)
    wants: tuple[str | None, ...]  # the task's probe inputs' expected outputs (None: unknown)
    reviewer: float | None  # mean log p(docstring | code)


@dataclass(frozen=True)
class Ranker:
    name: str
    reads: str  # what the ranker looks at, for the results' legend
    order: Callable[[Sequence[RankedSample]], list[RankedSample]]
    uses_other_samples: bool = True  # its order of a sample depends on which others are there
    needs_reviewer: bool = False  # meaningless without stored reviewer scores


def by_mean_logprob(samples: Sequence[RankedSample]) -> list[RankedSample]:
    """The product's no-test choice (app/choose.py): usable candidates first, then mean log-prob."""
    usable = [s for s in samples if s.usable]
    rest = [s for s in samples if not s.usable]
    key = (lambda s: s.mean_logprob, lambda s: len(s.body))
    return rank_by_mean_logprob(usable, *key) + rank_by_mean_logprob(rest, *key)


def signals(samples: Sequence[RankedSample]) -> Signals:
    """The product's evidence over one task's samples (each sample its own candidate: duplicates
    agree with each other, as AlphaCode's clusters count them)."""
    indices = [s.index for s in samples]
    outputs = {s.index: s.outputs for s in samples}
    wants = samples[0].wants if samples else ()
    found = Signals(logprob={s.index: s.mean_logprob for s in samples},
                    reviewer={s.index: s.reviewer for s in samples if s.reviewer is not None},
                    n_inputs=len(wants), n_samples=len(samples),
                    n_wanted=sum(w is not None for w in wants))
    if any(o is not None for o in outputs.values()):
        found.examples, found.agreement, found.cluster = execution_signals(indices, outputs, wants)
    return found


def _by(key) -> Callable[[Sequence[RankedSample]], list[RankedSample]]:
    """Usable samples first (what the product ranks at all), then ``key`` (smaller is better),
    ties in the log-prob order."""
    def order(samples: Sequence[RankedSample]) -> list[RankedSample]:
        found = signals(samples)
        base = by_mean_logprob(samples)
        return sorted(base, key=lambda s: (not s.usable, key(found, s.index)))
    return order


by_doctests = _by(lambda f, i: -f.examples.get(i, 0.0))
by_agreement = _by(lambda f, i: -f.agreement.get(i, 0.0))
by_cluster = _by(lambda f, i: -f.cluster.get(i, 0.0))
by_reviewer = _by(lambda f, i: -reviewer_order_score(f, i))
by_combined = _by(combined_key)


DEFAULT = "combined"  # the product's default no-test ranker (verify.select, app/config.py)

RANKERS: dict[str, Ranker] = {
    r.name: r
    for r in (
        Ranker("mean_logprob", "parse validity, then mean token log-probability", by_mean_logprob,
               uses_other_samples=False),
        Ranker("doctest", "docstring examples reproduced (any style: >>>, prose, Examples:), "
               "then log-prob", by_doctests, uses_other_samples=False),
        Ranker("execution_agreement", "MBR-exec: samples agreeing per probe input (docstring "
               "examples' and type hints' inputs), then log-prob", by_agreement),
        Ranker("cluster", "AlphaCode: samples with identical outputs on every probe input, then "
               "log-prob", by_cluster),
        Ranker("reviewer", "Coder-Reviewer: mean log p(docstring | code) (small model) + mean "
               "log p(code)", by_reviewer, uses_other_samples=False, needs_reviewer=True),
        Ranker("combined", "the product's default: examples reproduced, then agreement, then "
               "reviewer + log-prob", by_combined),
    )
}


def measurable(chosen: list[Ranker], samples: Sequence[RankedSample]) -> tuple[list[Ranker], dict]:
    """The rankers the stored evidence supports, and {name: why not} for the others (a ranker
    without its evidence would only repeat the log-prob order under another name)."""
    reviewed = any(s.reviewer is not None for s in samples)
    skipped = {r.name: "no reviewer scores stored (bench/signals.py --review)"
               for r in chosen if r.needs_reviewer and not reviewed}
    return [r for r in chosen if r.name not in skipped], skipped


def choose(names: Sequence[str] | None) -> list[Ranker]:
    if not names:
        return list(RANKERS.values())
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; known: {', '.join(RANKERS)}")
    return [RANKERS[n] for n in names]
