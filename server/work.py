"""Who is working on which document, and the model the work shares. No protocol here.

Editors fire an inline request per keystroke: only the newest one per document deserves the CPU, so
starting one stops the previous one's generation (its ``should_stop`` turns true), not just its
reply. A "generate until pass" job is heavy: one per document at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from budgetpass.generation.engine import ModelSpec, open_model

log = logging.getLogger("budgetpass.server")


class StopFlag:
    """A ``should_stop`` for the core, with the reason it was raised (for logs and replies)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def stop(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


@dataclass
class DocumentWork:
    inline: StopFlag | None = None
    inline_serial: int = 0
    job: StopFlag | None = None


class WorkBoard:
    """Per-document bookkeeping of running inline generations and jobs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[str, DocumentWork] = {}

    def _doc(self, uri: str) -> DocumentWork:
        return self._docs.setdefault(uri, DocumentWork())

    def start_inline(self, uri: str) -> tuple[int, StopFlag]:
        """A new inline request: the previous one for ``uri`` is stopped; returns (serial, flag)."""
        with self._lock:
            doc = self._doc(uri)
            if doc.inline is not None and not doc.inline():
                doc.inline.stop("superseded by a newer inline request")
            doc.inline_serial += 1
            doc.inline = StopFlag()
            return doc.inline_serial, doc.inline

    def is_latest_inline(self, uri: str, serial: int) -> bool:
        with self._lock:
            return self._doc(uri).inline_serial == serial

    def start_job(self, uri: str) -> StopFlag | None:
        """A flag for a new job, or None while one already runs for ``uri``."""
        with self._lock:
            doc = self._doc(uri)
            if doc.job is not None:
                return None
            doc.job = StopFlag()
            return doc.job

    def jobs_running(self) -> int:
        with self._lock:
            return sum(doc.job is not None for doc in self._docs.values())

    def finish_job(self, uri: str, flag: StopFlag) -> None:
        with self._lock:
            doc = self._docs.get(uri)
            if doc is not None and doc.job is flag:
                doc.job = None

    def close(self, uri: str) -> None:
        """The document was closed: its pending work is pointless."""
        with self._lock:
            doc = self._docs.pop(uri, None)
        if doc is not None:
            for flag in (doc.inline, doc.job):
                if flag is not None:
                    flag.stop("document closed")

    def stop_all(self, reason: str) -> None:
        with self._lock:
            docs = list(self._docs.values())
        for doc in docs:
            for flag in (doc.inline, doc.job):
                if flag is not None:
                    flag.stop(reason)


RETRY_FAILED_S = 10.0  # a server that was down may be up now: try again, not on every keystroke


@dataclass
class ModelSlot:
    """The model (an ``engine.OpenedModel``: backend, template, parameters), opened once in the
    background through ``engine.open_model``, the same cache jobs use; requests never wait."""

    spec: ModelSpec | None = None
    state: str = "idle"  # idle | loading | ready | failed
    error: str = ""
    model: object = None
    seconds: float = 0.0
    failed_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return self.spec.model if self.spec else ""

    def ensure(self, spec: ModelSpec, on_done: Callable[[ModelSlot], None],
               on_start: Callable[[ModelSlot], None] | None = None) -> bool:
        """Start opening ``spec`` unless it is open or opening (or failed moments ago):
        ``on_start`` runs first, here, ``on_done`` in the loading thread. True if a load started."""
        with self._lock:
            if self.spec == spec and (self.state in ("loading", "ready") or (
                    self.state == "failed"
                    and time.monotonic() - self.failed_at < RETRY_FAILED_S)):
                return False
            self.spec, self.state, self.error, self.model = spec, "loading", "", None
        if on_start is not None:
            on_start(self)
        threading.Thread(target=self._load, args=(spec, on_done), name="budgetpass-model-load",
                         daemon=True).start()
        return True

    def _load(self, spec: ModelSpec, on_done) -> None:
        start = time.monotonic()
        try:
            model = open_model(spec)
        except Exception as exc:  # any failure is shown to the user, never raised
            with self._lock:
                if self.spec == spec:
                    where = f" on {spec.endpoint}" if spec.endpoint else ""
                    self.state, self.error = "failed", (f"could not open model {spec.model!r} "
                                                        f"({spec.backend}{where}): {exc}")
                    self.failed_at = time.monotonic()
            log.exception("model load failed")
        else:
            with self._lock:
                if self.spec != spec:
                    return  # the setting changed while we loaded
                self.state, self.model, self.seconds = "ready", model, time.monotonic() - start
        on_done(self)

    def ready_model(self):
        with self._lock:
            return self.model if self.state == "ready" else None
