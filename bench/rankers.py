"""Rankers for choosing one sample without the hidden tests (the paper's no-test setting).

A ranker orders one task's samples best first. The list is a registry so rankers plug in by name;
each states what it reads. The names follow verify.select's rankers (mean_logprob, doctest,
execution_agreement); here they read the outcomes the bench already recorded in the sandbox (each
sample's results on the docstring's >>> examples) instead of running candidates again. When the
product's own doctest / agreement rankers land on main, register adapters to them here instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from budgetpass.verify.select import rank_by_mean_logprob


class RankedSample(Protocol):
    index: int
    body: str
    mean_logprob: float
    usable: bool  # parses and is not a stub: what app/choose.py would consider at all
    doctest_results: tuple[tuple[bool, str], ...] | None


@dataclass(frozen=True)
class Ranker:
    name: str
    reads: str  # what the ranker looks at, for the results' legend
    order: Callable[[Sequence[RankedSample]], list[RankedSample]]


def by_mean_logprob(samples: Sequence[RankedSample]) -> list[RankedSample]:
    """The product's no-test choice (app/choose.py): usable candidates first, then mean log-prob."""
    usable = [s for s in samples if s.usable]
    rest = [s for s in samples if not s.usable]
    key = (lambda s: s.mean_logprob, lambda s: len(s.body))
    return rank_by_mean_logprob(usable, *key) + rank_by_mean_logprob(rest, *key)


def by_doctests(samples: Sequence[RankedSample]) -> list[RankedSample]:
    """More docstring examples passed first, then the log-prob order (tasks without examples: the
    log-prob order alone)."""
    base = by_mean_logprob(samples)
    passed = {s.index: sum(ok for ok, _ in s.doctest_results or ()) for s in samples}
    return sorted(base, key=lambda s: -passed[s.index])  # stable: ties keep the log-prob order


def by_agreement(samples: Sequence[RankedSample]) -> list[RankedSample]:
    """Execution agreement: samples whose outputs on the docstring's example inputs match the most
    other samples first (expected outputs unused), then the log-prob order."""
    base = by_mean_logprob(samples)
    signature = {s.index: None if not s.doctest_results else tuple(got for _, got in s.doctest_results)
                 for s in samples}
    votes = Counter(sig for sig in signature.values() if sig is not None)
    return sorted(base, key=lambda s: -votes.get(signature[s.index], 0))


RANKERS: dict[str, Ranker] = {
    r.name: r
    for r in (
        Ranker("mean_logprob", "parse validity, then mean token log-probability", by_mean_logprob),
        Ranker("doctest", "the docstring's >>> examples (expected outputs), then log-prob",
               by_doctests),
        Ranker("execution_agreement",
               "agreement of outputs on the docstring's example inputs, then log-prob",
               by_agreement),
    )
}


def choose(names: Sequence[str] | None) -> list[Ranker]:
    if not names:
        return list(RANKERS.values())
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; known: {', '.join(RANKERS)}")
    return [RANKERS[n] for n in names]
