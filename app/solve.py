"""The one use case: from a request (a function or a cursor) to a verdict.

Every request kind goes through ``solve``: the CLI's ``generate``, the server's generate-until-pass
command, inline completion (a short deadline, never written, cursor-shaped output: ``complete``)
and the benches. It reads the file (or the editor's buffer), finds the tests, plans the budget,
samples and tests candidates through one test session, selects one and, if asked, writes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.engine import OpenedModel, open_model
from budgetpass.generation.llamacpp import BackendError
from budgetpass.verify.runner import default_python
from budgetpass.verify.sandbox import SandboxInfo
from budgetpass.verify.sandbox import probe as probe_sandbox

from . import plan as planning
from .choose import choose
from .config import DEFAULTS, Config
from .report import (
    Cancelled,
    Event,
    EventCallback,
    Report,
    SolveError,
    busy_seconds,
    overlap_seconds,
)
from .run import GenerateAndTest
from .target import Target, preload, prompt, read, resolve, tests_for
from .workers import WorkerCache, WorkerKey, start_worker
from .write import write_selected


@dataclass(frozen=True)
class Request:
    """What to fill: ``function`` (a qualified name) or the cursor at ``offset`` of ``path``.

    ``text``: the editor's buffer (unsaved edits included), used instead of the file on disk.
    ``kind``: whole_body | rest_of_line | at_cursor (whichever the cursor's place asks for: the
    whole body on a blank line of an empty body, else the rest of the line). ``deadline``
    (``time.monotonic()``): no test starts or counts after it; one already past means no tests.
    ``write``: put a passing (or, without tests, ranked) body into the file.
    """

    path: Path
    function: str | None = None
    offset: int | None = None
    text: str | None = None
    kind: str = "whole_body"
    deadline: float | None = None
    write: bool = False


def sandbox(config: Config) -> SandboxInfo:
    """The sandbox that works here, or SolveError saying how to get the one asked for."""
    try:
        return probe_sandbox(config.tests.sandbox)
    except (RuntimeError, ValueError) as exc:
        raise SolveError(f"{exc}; or set the sandbox to 'auto'") from None


def open_configured(config: Config, emit: EventCallback) -> tuple[OpenedModel, object]:
    """The model and its prompt template (an ``engine.TemplateChoice``)."""
    emit(Event("load", text=f"{config.model.name} ({config.model.backend})"))
    try:
        opened = open_model(config.model.spec)
        return opened, opened.template(config.model.template or None)
    except (models.ModelError, BackendError, ValueError) as exc:
        raise SolveError(str(exc)) from None


class _Lender:
    """The request's worker, started (or borrowed from ``cache``) the first time it is needed."""

    def __init__(self, target: Target, node_ids, config: Config, info: SandboxInfo,
                 cache: WorkerCache | None):
        tests = config.tests
        self.key = WorkerKey(target.project, tests.python or default_python(target.project),
                             tests.sandbox, tests.limits, tests.extra_args, tests.parallel,
                             preload(target, node_ids) if node_ids else ())
        self.info, self.cache, self.worker = info, cache, None

    def __call__(self):
        if self.worker is None:
            self.worker = (self.cache.borrow(self.key, self.info) if self.cache is not None
                           else start_worker(self.key, self.info))
        return self.worker

    def release(self) -> None:
        if self.worker is not None:
            if self.cache is not None:
                self.cache.give_back(self.key, self.worker)
            else:
                self.worker.close()
            self.worker = None


def solve(request: Request, config: Config = DEFAULTS, on_event: EventCallback | None = None,
          should_stop: Callable[[], bool] | None = None, *,
          workers: WorkerCache | None = None) -> Report:
    """Generate the budget's candidates for the request, test them, select one.

    ``workers``: warm test workers kept between requests (the server's); without it the request
    starts its own and closes it. Raises SolveError (Cancelled when ``should_stop`` turned true).
    """
    emit = on_event or (lambda event: None)
    start = time.monotonic()
    path = Path(request.path).absolute()
    text = read(path) if request.text is None else request.text
    target = resolve(path, text, request.function, request.offset, request.kind, config)
    info = sandbox(config)
    warnings = [info.warning] if info.warning else []
    testing = request.deadline is None or request.deadline > start
    node_ids = tests_for(target, config, info, warnings, emit) if testing else ()

    emit(Event("resolve", text=f"model {config.model.name}"))
    try:
        budget = planning.plan(config)
    except (models.ModelError, ValueError) as exc:
        raise SolveError(str(exc)) from None
    opened, template = open_configured(config, emit)
    if template.fallback:
        warnings.append(template.reason)
    made = prompt(target, template.template)
    at_cursor = request.offset is not None
    k, params = planning.sampling(config, target.kind, budget.samples, made.stops, at_cursor)
    anytime = config.budget.anytime and not at_cursor
    plan = planning.plan_sampling(k, bool(node_ids), anytime, config.budget.seconds,
                                  config.budget.max_samples, config.budget.batch_size,
                                  budget.seconds)
    lender = _Lender(target, node_ids, config, info, workers)
    job = GenerateAndTest(opened.backend, made.text, params, plan, target, node_ids, lender,
                          pipeline=config.tests.pipeline,
                          stop_at_first_pass=config.tests.stop_at_first_pass,
                          deadline=request.deadline, emit=emit, should_stop=should_stop,
                          start=start)
    try:
        job.run()
        if should_stop and should_stop():
            raise Cancelled("cancelled")
        choice = choose(job.candidates, target, node_ids, config.ranking.rankers, lender, emit)
    finally:
        lender.release()
    if plan.note:
        warnings.append(plan.note)
    if job.session is not None and job.session.expired:
        warnings.append(f"tested {job.session.tested} of {job.session.known} before the "
                        "time limit")
    report = Report(
        status=choice.status, kind=target.kind, file=str(path), function=target.function,
        project=str(target.project),
        model={**opened.to_json(), "template": made.template, "template_reason": template.reason},
        budget=budget, tests=node_ids, candidates=job.candidates, selected=choice.selected,
        sandbox=info.kind, warnings=warnings, seconds=time.monotonic() - start,
        generation_seconds=busy_seconds(job.decoding), message=choice.message, source_text=text,
        rankings=choice.rankings, usage=job.usage, plan=plan,
        pipelined=config.tests.pipeline and bool(node_ids),
        testing_seconds=busy_seconds(job.testing),
        overlap_seconds=overlap_seconds(job.decoding, job.testing), batches=job.batches,
        offset=target.cursor.offset if target.cursor is not None else None)
    if request.write and report.selected is not None and report.status in ("passed", "ranked"):
        write_selected(report)
    emit(Event("done", text=report.status, seconds=time.monotonic() - start))
    return report
