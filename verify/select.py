"""Choosing one candidate: by tests when there are any, else by rank (and then it is unverified)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def rank_by_mean_logprob(candidates: Sequence[T], key_logprob, key_length) -> list[T]:
    """Best first: higher mean token log-probability, then shorter (the paper's no-test baseline)."""
    return sorted(candidates, key=lambda c: (-key_logprob(c), key_length(c)))
