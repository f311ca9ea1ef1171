"""Text helpers used by the blog's URL router and its index page.

The bodies are missing on purpose: `make demo` asks budgetpass to fill them in.
"""

import math
import re


def slugify(title: str) -> str:
    """Turn a post title into a URL slug.

    Lowercase; every run of characters that are not ASCII letters or digits becomes a single
    hyphen; no hyphen at either end.
    """
    raise NotImplementedError


def chunk(items: list, size: int) -> list:
    """Split ``items`` into consecutive lists of ``size`` items; the last may be shorter."""
    raise NotImplementedError


def reading_time(text: str, words_per_minute: int = 200) -> int:
    """Minutes needed to read ``text``: its number of words divided by ``words_per_minute``,
    rounded up to a whole minute (so 0 for an empty text)."""
    raise NotImplementedError


def initials(name: str) -> str:
    """Upper-case initials of a person's name: the first letter of each word, e.g.
    'ada lovelace' -> 'AL'."""
    raise NotImplementedError
