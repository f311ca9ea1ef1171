"""window/workDoneProgress for one generate job: a throttled bar that never goes back, fed by
the job's events from its thread; cancel from the client's progress UI raises the job's flag."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from budgetpass.app.report import Event
from lsprotocol import types

from .work import StopFlag

log = logging.getLogger("budgetpass.server")

PROGRESS_EVERY_S = 0.25


class Progress:
    """window/workDoneProgress for one job, throttled; cancel from the client raises the flag."""

    def __init__(self, ls, flag: StopFlag, title: str):
        self.ls, self.flag, self.title = ls, flag, title
        self.token = f"budgetpass-{uuid.uuid4().hex[:12]}"
        self.enabled = False
        self.start = time.monotonic()
        self.last = 0.0
        self.k = 0
        self.tested = 0
        self.passing = 0
        self.percentage = 0

    async def begin(self) -> None:
        caps = self.ls.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(self.token), 5)
        except Exception as exc:  # noqa: BLE001 - progress is a nicety, the job goes on
            log.warning("progress create failed: %s", exc)
            return
        self.enabled = True
        future = self.ls.work_done_progress.tokens.get(self.token)
        if future is not None:
            future.add_done_callback(lambda f: self.flag.stop("cancelled from the progress UI"))
        self.ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
            title=self.title, cancellable=True, message="starting", percentage=0))

    def event(self, event: Event) -> None:
        """Called from the job's thread. Generate and test events interleave (candidates are
        tested while others decode); the counts come from the events, never from their text."""
        if event.phase == "generate":
            self.k = max(self.k, event.samples)
        if event.phase == "test":
            self.tested = event.done
            self.passing = max(self.passing, event.passing)
        now = time.monotonic()
        if not self.enabled or (now - self.last < PROGRESS_EVERY_S
                                 and event.phase not in ("test", "repair")):
            return
        self.last = now
        elapsed = now - self.start
        if event.phase == "generate":
            message = (f"sampling {self.k} candidates · {event.done} tokens"
                       + (f" · {self.tested} tested · {self.passing} passing" if self.tested
                          else "") + f" · {elapsed:.1f} s")
            percentage = int(40 * event.done / max(1, event.total))
        elif event.phase == "test":
            message = (f"candidate {event.done}/{event.total} · {self.passing} passing · "
                       f"{elapsed:.1f} s")
            percentage = 40 + int(60 * event.done / max(1, event.total))
        else:
            message, percentage = f"{event.phase}: {event.text} · {elapsed:.1f} s", 0
        # Tests interleave with sampling, and anytime adds batches: never let the bar go back.
        self.percentage = max(self.percentage, min(99, percentage))
        self.ls.from_any_thread(self.ls.work_done_progress.report, self.token,
                                 types.WorkDoneProgressReport(message=message,
                                                              percentage=self.percentage))

    def end(self, message: str) -> None:
        if self.enabled:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)
