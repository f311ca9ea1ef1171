"""Caps and uids of the worker, in one place (sizes in bytes)."""

from __future__ import annotations

FIRST_UID = 60000  # slot s: judge uid FIRST_UID + 2s, executor uid FIRST_UID + 2s + 1 (as root)
MESSAGE_LIMIT = 4000
OUTPUT_LIMIT = 1 << 20  # bytes of raw stdout/stderr a candidate may write before it is killed
OUTPUT_TAIL = 2000
RESULT_LINE_LIMIT = 4 << 20  # the judge's report lines (trusted, but capped all the same)
FRAME_LIMIT = 32 << 20  # one executor answer
DEPTH_LIMIT = 200
CALL_OUTPUT_LIMIT = 64 << 10  # what a call printed, handed to the judge's stdout
