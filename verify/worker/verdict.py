"""A run's result from the judge's report lines: a missing 'done' or a garbled line fails it.

Every word of a verdict comes from the judge's result pipe, never from the run's output, which
the candidate's executor writes to as well."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .scheduler import Running

# How a run's outcomes begin when pytest itself stopped before collecting (a conftest that does
# not import, an option in the project's addopts that no installed plugin knows): the project's
# test set-up, the same for every candidate (the host's report says so; see app/choose.py).
NOT_STARTED = "pytest stopped before running any test: "
COLLECTION_ERROR = "collection error in "  # a test module that does not import (pytest then stops)


def explained(text: str) -> list[str]:
    """pytest's ``E`` lines in a report or its output: what went wrong, in its words."""
    return [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]


def verdict(run: Running, status: int | None, seconds: float, output: str) -> dict:
    """Outcomes from the judge's messages; a missing 'done' or a garbled line fails the run."""
    wall = run.job["limits"]["wall_seconds"]
    collected: list[str] = []
    final: dict[str, tuple[str, str]] = {}
    test_seconds = 0.0
    current = None
    done = None
    calls = None
    stopped_said = failed_said = ""  # the judge's own words (never the output it shares)
    problems = list(run.problems)
    for message in run.messages:
        op = message.get("op")
        if op == "collected":
            collected = [str(n) for n in message.get("tests", [])]
        elif op == "start":
            current = message.get("node")
        elif op == "test":
            final[str(message.get("node"))] = (str(message.get("outcome")),
                                               str(message.get("message", "")))
            current = None
            try:
                test_seconds += float(message.get("seconds", 0.0))
            except (TypeError, ValueError):
                pass
        elif op == "collect_error":
            problems.append(f"{COLLECTION_ERROR}{message.get('node')}: {message.get('message')}")
        elif op == "done":
            done = message.get("exitstatus")
            calls = message.get("calls")
        elif op == "stopped":
            stopped_said = str(message.get("said", ""))[:600]
        elif op == "failed":
            failed_said = str(message.get("error", ""))[:300]
    if run.garbled:
        problems.append(f"{run.garbled} garbled report line(s)")
    # pytest.main returned without collecting (the judge exits 0 then; 1 when it failed itself)
    stopped = (not collected and done is None and not problems and not run.timed_out
               and not run.cancelled and status is not None and os.WIFEXITED(status)
               and os.WEXITSTATUS(status) == 0)
    if stopped:
        problems.append(NOT_STARTED + (stopped_said or "pytest gave no reason"))
    if status is None:
        exit_text = "not started"
    elif os.WIFSIGNALED(status):
        exit_text = f"killed by signal {os.WTERMSIG(status)}"
    else:
        exit_text = f"exit code {os.WEXITSTATUS(status)}"
    crash = f": {failed_said}" if failed_said else ""
    outcomes = []
    for node in collected or run.job["tests"]:
        if node in final:
            outcomes.append([node, *final[node]])
        elif run.timed_out and node == current:
            outcomes.append([node, "timeout", f"killed after {wall:g} s"])
        elif run.cancelled:
            outcomes.append([node, "error", "cancelled"])
        elif node == current:
            outcomes.append([node, "error", f"the test process ended during this test ({exit_text})"])
        elif run.timed_out:
            outcomes.append([node, "timeout", f"not run: the run was killed after {wall:g} s"])
        else:
            outcomes.append([node, "error", problems[0] if problems else
                             f"not run: the test process ended early ({exit_text}){crash}"])
    complete = (done is not None and collected and all(n in final for n in collected))
    exited = status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    passed = (complete and done == 0 and not problems and not run.timed_out and not run.cancelled
              and exited and any(o[1] == "passed" for o in outcomes)
              and all(o[1] in ("passed", "skipped") for o in outcomes))
    # Tests that pass without ever calling the changed function tell nothing about it: not a pass
    # (the host then ranks the candidates, unverified).
    never_called = bool(passed and run.job.get("forward") and calls == 0)
    passed = passed and not never_called
    if not complete and not problems and not run.timed_out and not run.cancelled:
        problems.append(f"the test process ended before pytest finished ({exit_text}){crash}")
    returncode = None if status is None else (
        os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status))
    return {"op": "result", "id": run.job["id"], "passed": bool(passed), "outcomes": outcomes,
            "seconds": seconds, "timed_out": run.timed_out, "cancelled": run.cancelled,
            "returncode": returncode, "problems": problems, "output": output,
            "test_seconds": test_seconds, "never_called": never_called}


def why_pytest_stopped(output: str, work: str) -> str:
    """pytest's own words for why it stopped: its first error line, and the last ``E`` line
    under it (or its last error line); the judge's copy's folder left out."""
    lines = [line.strip().replace(work + os.sep, "") for line in output.splitlines()]
    lines = [line for line in lines if line]
    errors = [line.rstrip(".") for line in lines
              if "error" in line.lower() and not line.startswith("E ")]
    said = errors[:1] + (explained("\n".join(lines))[-1:] or errors[1:][-1:])
    return (": ".join(said) or (lines[-1] if lines else "no output"))[:600]
