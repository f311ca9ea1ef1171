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
from budgetpass.generation.backends import BackendError, OpenedModel, open_model
from budgetpass.generation.budget import Budget
from budgetpass.generation.prompts import Prompt, RepairHint, prompt_info_for
from budgetpass.generation.types import Completion, GenerationResult, SamplingParams
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
from .target import Target, preload, prompt, read, resolve, tests_for, with_test_calls
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
    """The model and its prompt template (a ``prompts.TemplateChoice``)."""
    emit(Event("load", text=f"{config.model.name} ({config.model.backend})"))
    try:
        opened = open_model(config.model.spec)
        return opened, opened.template(config.model.template or None)
    except (models.ModelError, BackendError, ValueError) as exc:
        raise SolveError(str(exc)) from None


@dataclass(frozen=True)
class Sampling:
    """Where a request's candidates come from: a backend (``generate`` as in
    generation/types.py), its prompt and parameters, the plan, and what the report says of them."""

    backend: object
    prompt: Prompt
    params: SamplingParams
    plan: planning.SamplingPlan
    budget: Budget
    model: dict  # the report's "model"
    warnings: list[str]
    repair: Callable[[RepairHint], Prompt] | None = None  # the prompt that fixes a failed body


# (config, target, at_cursor, has_tests, emit) -> Sampling
CandidateSource = Callable[[Config, Target, bool, bool, EventCallback], Sampling]


def model_source(config: Config, target: Target, at_cursor: bool, has_tests: bool,
                 emit: EventCallback) -> Sampling:
    """The configured model, sampling the budget's k (or anytime batches)."""
    emit(Event("resolve", text=f"model {config.model.name}"))
    try:
        budget = planning.plan(config)
    except (models.ModelError, ValueError) as exc:
        raise SolveError(str(exc)) from None
    opened, template = open_configured(config, emit)
    info = prompt_info_for(opened, template.template)
    made = prompt(target, info, config)
    if not made.text:
        raise SolveError("nothing to complete from: no text before the cursor")
    k, params = planning.sampling(config, target.kind, budget.samples, made.stops, at_cursor)
    plan = planning.plan_sampling(k, has_tests, config.budget.anytime and not at_cursor,
                                  config.budget.seconds, config.budget.max_samples,
                                  config.budget.batch_size, budget.seconds)
    model = {**opened.to_json(), "template": made.template, "template_reason": template.reason,
             "prompt": made.to_json()}
    # e.g. auto fell back to fim because the chat template failed to render
    repair = (lambda hint: prompt(target, info, config, hint)) \
        if target.cursor is None and target.kind == "whole_body" else None
    return Sampling(opened.backend, made, params, plan, budget, model,
                    ([template.reason] if template.fallback else []) + list(made.notes), repair)


class GivenBodies:
    """A candidate source of bodies given instead of sampled (``budgetpass check``: vet bodies
    from anywhere; the attack tests' seam): each is one candidate, in order, tidied like a model's
    text; everything after (discovery, sandbox, testing, selection, report) is ``solve``'s."""

    def __init__(self, bodies: list[str]):
        self.bodies = list(bodies)

    def __call__(self, config: Config, target: Target, at_cursor: bool, has_tests: bool,
                 emit: EventCallback) -> Sampling:
        n = len(self.bodies)
        budget = Budget("samples", "none", 0, 0, 0.0, n, f"{n} given bodies, no model")
        given = Prompt("", "given", (), "", "no")
        return Sampling(self, given, config.sampling.params(), planning.plan_sampling(n, has_tests),
                        budget, {"name": "given bodies", "template": "no",
                                 "backend": "no model"}, [])

    def generate(self, prompt: str, n: int, params: SamplingParams, on_token=None,
                 should_stop=None, on_complete=None) -> GenerationResult:
        completions = tuple(Completion(i, body, (), (0.0,), "given", 0)
                            for i, body in enumerate(self.bodies[:n]))
        for completion in completions:
            if on_complete:
                on_complete(completion)
        return GenerationResult(completions, 0, 0.0, 0.0)


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
          workers: WorkerCache | None = None, source: CandidateSource | None = None) -> Report:
    """Generate the budget's candidates for the request, test them, select one.

    ``workers``: warm test workers kept between requests (the server's); without it the request
    starts its own and closes it. ``source``: where the candidates come from (default: the
    configured model and budget; ``GivenBodies`` for ``budgetpass check``). Raises SolveError
    (Cancelled when ``should_stop`` turned true).
    """
    emit = on_event or (lambda event: None)
    start = time.monotonic()
    path = Path(request.path).absolute()
    text = read(path) if request.text is None else request.text
    target = resolve(path, text, request.function, request.offset, request.kind, config)
    info = sandbox(config)
    warnings = [info.warning] if info.warning else []
    testing = request.deadline is None or request.deadline > start
    node_ids = tests_for(target, config, info, warnings, emit,
                         may_run_suite=request.deadline is None) if testing else ()
    target = with_test_calls(target, node_ids, config)

    sampling = (source or model_source)(config, target, request.offset is not None,
                                        bool(node_ids), emit)
    warnings += sampling.warnings
    plan = sampling.plan
    lender = _Lender(target, node_ids, config, info, workers)
    job = GenerateAndTest(sampling.backend, sampling.prompt, sampling.params, plan, target,
                          node_ids, lender,
                          pipeline=config.tests.pipeline,
                          stop_at_first_pass=config.tests.stop_at_first_pass,
                          deadline=request.deadline, emit=emit, should_stop=should_stop,
                          start=start, repair=sampling.repair,
                          repair_share=config.budget.repair_share)
    try:
        try:
            job.run()
        except BackendError as exc:  # the model's server died or misbehaved mid-request
            raise SolveError(str(exc)) from None
        if should_stop and should_stop():
            raise Cancelled("cancelled")
        choice = choose(job.candidates, target, node_ids, config.ranking.rankers, lender, emit,
                        sampling.backend, request.deadline)
    finally:
        lender.release()
    if plan.note:
        warnings.append(plan.note)
    warnings += job.warnings
    if job.session is not None and job.session.expired:
        warnings.append(f"tested {job.session.tested} of {job.session.known} before the "
                        "time limit")
    report = Report(
        status=choice.status, kind=target.kind, file=str(path), function=target.function,
        project=str(target.project),
        model=sampling.model, budget=sampling.budget, tests=node_ids, candidates=job.candidates,
        selected=choice.selected,
        sandbox=info.kind, warnings=warnings, seconds=time.monotonic() - start,
        generation_seconds=busy_seconds(job.decoding), message=choice.message, source_text=text,
        rankings=choice.rankings, ranked_by=choice.ranked_by, usage=job.usage, plan=plan,
        pipelined=config.tests.pipeline and bool(node_ids),
        testing_seconds=busy_seconds(job.testing),
        overlap_seconds=overlap_seconds(job.decoding, job.testing), batches=job.batches,
        offset=target.cursor.offset if target.cursor is not None else None)
    if request.write and report.selected is not None and report.status in ("passed", "ranked"):
        write_selected(report)
    emit(Event("done", text=report.status, seconds=time.monotonic() - start))
    return report
