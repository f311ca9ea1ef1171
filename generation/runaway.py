"""Runaway control: cut a candidate that has run far past what its siblings needed, or that loops.

A batch of k candidates lasts as long as its longest one: one sample that never closes its body
(16 of 1640 HumanEval samples of the 0.5B ran to the 512-token limit) holds the whole batch, and
its tests, until the limit. Such a candidate rarely passes, so it is cut and reported with
``finish_reason: "runaway"``; the others are untouched.

The rule is backend-independent: a backend's token loop keeps one ``RunawayGuard`` per request,
tells it each candidate that ends on its own (``finished``), and asks ``verdict`` after each
token. Tokens are anything comparable (ids in-process, token texts from a server's stream).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RunawayRule:
    """When a candidate is a runaway (``SamplingParams.runaway``; None turns control off).

    Too long: once ``quorum`` of the batch has ended on its own (a stop string or end of
    generation), a candidate longer than ``factor`` x the median length of those, and than
    ``floor`` tokens, is cut. Looping: its last tokens repeat a cycle of at most ``loop_period``
    tokens ``loop_repeats`` times or more, over at least ``loop_span`` tokens (a line written
    again and again, ``0, 0, 0, ...``).

    The length defaults come from ``bench/runaway_rule.py`` (every batch of the committed
    reallocation samples replayed through this guard): the first half of a batch to finish is its
    shortest, so "3 x their median, at least 64 tokens" cut a verbose body (comments, a loop where
    a sibling wrote a one-liner) about as often as a runaway: with chat prompts it cut 10 passing
    samples against 12 failing ones and took the only passes of 6 of 492 batches of 3, to save
    1.8% of their decode steps. 5 x and 192 tokens cut no passing chat sample, and where runaways
    are common (FIM prompts) keep half the saving (10.5-17.3% of steps against 21.7-34.6%) while
    losing the passes of 2 of 492 batches instead of 23.
    """

    factor: float = 5.0
    floor: int = 192
    quorum: float = 0.5
    loop_period: int = 64
    loop_repeats: int = 4
    loop_span: int = 48

    def __post_init__(self) -> None:
        if self.factor < 1 or self.floor < 1:
            raise ValueError("runaway factor must be >= 1 and floor >= 1 token")
        if not 0 < self.quorum <= 1:
            raise ValueError("runaway quorum must be in (0, 1]")
        if self.loop_period < 1 or self.loop_repeats < 2 or self.loop_span < 2:
            raise ValueError("runaway loop_period must be >= 1, loop_repeats and loop_span >= 2")


DEFAULT_RUNAWAY = RunawayRule()


class RunawayGuard:
    """The rule applied to one request of ``n`` candidates (not thread-safe: one token loop)."""

    def __init__(self, rule: RunawayRule | None, n: int):
        self.rule = rule
        self.n = n
        self._finished: list[int] = []
        self.limit: int | None = None  # the length cut, once enough siblings have finished
        # (period, tail length that must be periodic) pairs, shortest cycles first
        self._cycles = [] if rule is None else [
            (p, p * max(rule.loop_repeats, math.ceil(rule.loop_span / p)))
            for p in range(1, rule.loop_period + 1)]

    @classmethod
    def for_params(cls, params, n: int) -> RunawayGuard:
        """Off when the params turn it off or ask for exactly ``max_tokens`` (``ignore_eos``)."""
        return cls(None if params.ignore_eos else params.runaway, n)

    def finished(self, tokens: int) -> None:
        """A candidate ended on its own after ``tokens`` tokens (not cut, not at the limit)."""
        if self.rule is None:
            return
        self._finished.append(tokens)
        if len(self._finished) >= max(1, math.ceil(self.rule.quorum * self.n)):
            median = statistics.median(self._finished)
            self.limit = max(self.rule.floor, math.ceil(self.rule.factor * median))

    def verdict(self, tokens: Sequence) -> str | None:
        """Why the candidate with these generated ``tokens`` is a runaway, or None."""
        if self.rule is None:
            return None
        if self.limit is not None and len(tokens) > self.limit:
            return (f"{len(tokens)} tokens, over {self.rule.factor:g} x the median of the "
                    f"{len(self._finished)} finished candidates (limit {self.limit})")
        return self.loop(tokens)

    def loop(self, tokens: Sequence) -> str | None:
        """The cycle the tail of ``tokens`` repeats, if it repeats one often enough."""
        size = len(tokens)
        if self.rule is None or size < self.rule.loop_span:
            return None
        tokens = list(tokens[-self._cycles[-1][1]:])  # the longest tail any cycle looks at
        size = len(tokens)
        last = tokens[-1]
        for period, tail in self._cycles:
            if tail > size or tokens[-1 - period] != last:  # cheap: most tails fail here
                continue
            if tokens[size - tail + period:] == tokens[size - tail:size - period]:
                return f"loops: a cycle of {period} tokens repeated {tail // period} times"
        return None
