"""The main job: fill one function's body with budget-matched samples, keep one the tests pass.

Pure of any editor protocol: the CLI and the language server call ``solve`` and render its report.
The user's project is only read; candidates run in scratch copies.
"""

from __future__ import annotations

import ast
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from budgetpass.generation import calibration, models
from budgetpass.generation.anytime import anytime_batches
from budgetpass.generation.backends import choose_backend
from budgetpass.generation.budget import Budget, BudgetRequest, BudgetUsage, plan_budget
from budgetpass.generation.engine import ModelSpec, model_parameters, open_model
from budgetpass.generation.llamacpp import BackendError
from budgetpass.generation.prompts import body_prompt
from budgetpass.generation.source import (
    SourceError,
    is_stub,
    locate_function,
    normalize_body,
    splice_body,
    without_stub_bodies,
)
from budgetpass.generation.types import Completion, SamplingParams

from . import tracing
from .discovery import find_tests, test_imports
from .pipeline import SamplingPlan, TestSchedule, busy_seconds, overlap_seconds, plan_sampling
from .runner import (
    CandidateRun,
    WarmWorker,
    WorkerError,
    check_pytest_args,
    default_python,
    find_project_root,
)
from .sandbox import Limits
from .sandbox import probe as probe_sandbox
from .select import (
    RankInput,
    TestedCandidate,
    call_site_inputs,
    choose_tested,
    docstring_examples,
    rank_by_mean_logprob,
    rank_candidates,
)


class JobError(RuntimeError):
    """The job could not run; the message says why and how to fix it."""


@dataclass(frozen=True)
class JobSettings:
    model: str = models.DEFAULT_MODEL
    budget: BudgetRequest = field(default_factory=BudgetRequest)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    sandbox: str = "auto"  # auto | bwrap | process
    limits: Limits = field(default_factory=Limits)
    python: str | None = None  # interpreter for the project's tests; default: its venv or ours
    project: Path | None = None  # default: nearest folder with pyproject.toml, setup.py, .git, ...
    template: str | None = None  # prompt template override
    threads: int | None = None
    # Without tests: which rankers run; the first one that can rank picks the candidate. Log-prob
    # first: on HumanEval (bench/ranking.py) it picked a passing candidate as often as execution
    # agreement did (53% vs 51%); docstring examples are tests here, so `doctest` rarely applies.
    rankers: tuple[str, ...] = ("mean_logprob", "execution_agreement")
    stop_at_first_pass: bool = True  # stop testing once one candidate passes every test
    parallel: int | None = None  # candidates tested at once; default: one per CPU core
    add_tests: tuple[str, ...] = ()  # pytest node ids to run besides the discovered ones
    pin_tests: tuple[str, ...] = ()  # if set: exactly these node ids, no discovery
    # Also run the project's suite once under a call tracer (cached until a test file changes) to
    # find tests that reach the function through other code (verify/tracing.py).
    trace_tests: bool = False
    # Test each candidate as soon as it is decoded, while the others still decode, and cancel the
    # decoding once one passes; False: generate all, then test (the baseline bench/pipeline.py
    # measures against).
    pipeline: bool = True
    # Generate-until-pass: batches of ``batch_size`` (default: the budget's k) until a candidate
    # passes, ``seconds`` of sampling are spent (default: a time budget's seconds) or
    # ``max_samples`` are drawn (default: 256 with seconds, else 4 batches).
    anytime: bool = False
    seconds: float | None = None
    max_samples: int | None = None
    batch_size: int | None = None
    backend: str = "auto"  # auto | llama.cpp | vllm | openai (generation.backends.choose_backend)
    endpoint: str = ""  # openai: the server's URL, e.g. http://127.0.0.1:8080
    vllm_model: str = ""  # vllm: a Hugging Face folder (default: converted from the GGUF)
    pytest_args: tuple[str, ...] = ()  # extra pytest options (runner.check_pytest_args)

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.backend, self.endpoint, self.threads, self.vllm_model)

    def __post_init__(self) -> None:
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"seconds must be a positive number, not {self.seconds!r}")
        for name in ("max_samples", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1, not {value!r}")


@dataclass
class Candidate:
    index: int
    body: str
    mean_logprob: float
    tokens: int
    finish_reason: str
    parses: bool
    problem: str = ""  # why it cannot be used, if it cannot
    run: CandidateRun | None = None  # None: not tested
    # Seconds since the job started: decoding finished, its test run started and ended.
    decoded_at: float | None = None
    test_started_at: float | None = None
    test_ended_at: float | None = None

    @property
    def decoded(self) -> bool:
        """Whether it was decoded to the end (not cancelled because another passed)."""
        return self.finish_reason != "cancelled"

    def to_json(self) -> dict:
        data = {
            "index": self.index,
            "body": self.body,
            "mean_logprob": round(self.mean_logprob, 4),
            "tokens": self.tokens,
            "finish_reason": self.finish_reason,
            "parses": self.parses,
            "problem": self.problem,
            "decoded": self.decoded,
            "tested": self.run is not None,
            "decoded_at": _rounded(self.decoded_at),
            "test_started_at": _rounded(self.test_started_at),
            "test_ended_at": _rounded(self.test_ended_at),
        }
        if self.run is not None:
            data["passed"] = self.run.passed
            data["test_seconds"] = round(self.run.seconds, 3)
            data["outcomes"] = [
                {"test": o.node_id, "outcome": o.outcome, "message": o.message[:500]}
                for o in self.run.outcomes
            ]
            if not self.run.outcomes:
                data["output"] = self.run.output[-1000:]
        return data


@dataclass
class JobReport:
    status: str  # passed | partial | ranked | failed
    file: str
    function: str
    project: str
    model: dict
    budget: Budget
    tests: tuple[str, ...]
    candidates: list[Candidate]
    selected: int | None
    sandbox: str
    warnings: list[str]
    seconds: float
    generation_seconds: float
    message: str
    source_text: str = field(repr=False, default="")  # the file as the job read it
    written: bool = False
    rankings: dict = field(default_factory=dict)  # ranker name -> Ranking (no-test jobs)
    usage: BudgetUsage | None = None  # samples and seconds spent against those given
    plan: SamplingPlan | None = None
    pipelined: bool = False  # candidates were tested while others still decoded
    testing_seconds: float = 0.0  # wall time with at least one test run going
    overlap_seconds: float = 0.0  # wall time with decoding and testing both going
    batches: int = 1

    @property
    def passing(self) -> list[int]:
        return [c.index for c in self.candidates if c.run is not None and c.run.passed]

    @property
    def selected_body(self) -> str | None:
        return None if self.selected is None else self.candidates[self.selected].body

    def to_json(self) -> dict:
        budget = self.budget.to_json()
        return {
            "status": self.status,
            "message": self.message,
            "file": self.file,
            "function": self.function,
            "project": self.project,
            "model": self.model,
            "budget": budget,
            "budget_used": self._budget_used(),
            "tests": list(self.tests),
            "candidates": [c.to_json() for c in self.candidates],
            "passing": self.passing,
            "selected": self.selected,
            "selected_body": self.selected_body,
            "sandbox": self.sandbox,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "generation_seconds": round(self.generation_seconds, 3),
            "written": self.written,
            "rankings": {name: r.to_json() for name, r in self.rankings.items()},
            "pipeline": {
                "pipelined": self.pipelined,
                "plan": self.plan.to_json() if self.plan else None,
                "batches": self.batches,
                "tested": [c.index for c in self.candidates if c.run is not None],
                "not_decoded": [c.index for c in self.candidates if not c.decoded],
                "generation_seconds": round(self.generation_seconds, 3),
                "testing_seconds": round(self.testing_seconds, 3),
                "overlap_seconds": round(self.overlap_seconds, 3),
            },
        }

    def _budget_used(self) -> dict:
        """What the job spent against what it was given (samples: sequences started)."""
        usage = self.usage or BudgetUsage(self.budget.samples, len(self.candidates),
                                          self.budget.seconds, self.generation_seconds,
                                          sum(c.tokens for c in self.candidates))
        return {"samples": usage.used_samples, "seconds": round(usage.used_seconds, 3),
                "given_samples": usage.given_samples, "given_seconds": usage.given_seconds,
                "tokens": usage.generated_tokens,
                "decoded": sum(c.decoded for c in self.candidates),
                "cancelled": sum(not c.decoded for c in self.candidates)}


@dataclass(frozen=True)
class JobEvent:
    """Progress: ``phase`` is resolve | load | generate | test | done.

    generate: ``done``/``total`` tokens; test: ``done`` distinct candidates tested of ``total``
    known so far (decoded ones to test plus those still decoding). Generate and test events
    interleave while candidates are tested during decoding.
    """

    phase: str
    done: int = 0
    total: int = 0
    text: str = ""
    samples: int = 0  # candidates sampled so far (anytime: grows batch by batch)
    passing: int = 0  # distinct candidates passing every selected test so far
    seconds: float = 0.0  # since the job started


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


EventCallback = Callable[[JobEvent], None]


def _traced(project, path, rel_file, function, settings, info, found, warnings, emit):
    """Node ids that only the traced run finds (the trace maps the file as it is on disk)."""
    emit(JobEvent("resolve", text="tracing the test suite"))
    try:
        trace, traced = tracing.traced_tests(
            project, rel_file, _read(path), function, settings.python or default_python(project),
            info, settings.limits)
    except (tracing.TraceError, SyntaxError, JobError) as exc:
        warnings.append(f"dynamic test discovery failed, static discovery only: {exc}")
        return ()
    extra = tuple(t for t in traced if t not in found)
    how = "cached" if trace.cached else f"ran the suite in {trace.seconds:.1f} s"
    warnings.append(f"dynamic test discovery ({how}): {len(traced)} tests call {function}, "
                    f"{len(extra)} not found statically")
    return extra


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"{path}: cannot read it as UTF-8 text: {exc}") from None


def _candidate(completion: Completion, text: str, site, filename: str) -> Candidate:
    body = normalize_body(completion.text, site)
    problem, parses = "", False
    if not body.strip():
        problem = "empty body"
    elif is_stub(body):
        problem = "a stub, not an implementation"
    else:
        try:
            ast.parse(splice_body(text, site, body), filename=filename)
            parses = True
        except SyntaxError as exc:
            problem = f"syntax error: {exc.msg} (line {exc.lineno})"
    if completion.finish_reason == "length" and not parses:
        problem += " (hit the token limit)"
    return Candidate(completion.index, body, completion.mean_logprob, completion.token_count,
                     completion.finish_reason, parses, problem)


def solve(path: Path, function: str, settings: JobSettings = JobSettings(),
          on_event: EventCallback | None = None,
          should_stop: Callable[[], bool] | None = None,
          source_text: str | None = None) -> JobReport:
    """Generate k candidates for ``function`` in ``path``, verify them, select one.

    ``source_text``: the file as an editor holds it (unsaved changes included), used instead of
    what is on disk; the candidates are tested against that text.
    """
    emit = on_event or (lambda event: None)
    start = time.monotonic()
    path = Path(path).absolute()
    text = _read(path) if source_text is None else source_text
    try:
        site = locate_function(text, function, filename=str(path))
    except SourceError as exc:
        raise JobError(str(exc)) from None
    project = (settings.project or find_project_root(path)).absolute()
    try:
        rel_file = path.relative_to(project).as_posix()
    except ValueError:
        raise JobError(f"{path} is not inside the project folder {project}") from None
    try:
        check_pytest_args(settings.pytest_args)
    except ValueError as exc:
        raise JobError(f"extra pytest arguments: {exc}") from None
    info = probe_sandbox(settings.sandbox)
    warnings = [info.warning] if info.warning else []
    if settings.pin_tests:
        node_ids = tuple(settings.pin_tests)
    else:
        found = find_tests(project, function, target_file=path).node_ids
        if settings.trace_tests:
            found += _traced(project, path, rel_file, function, settings, info, found, warnings,
                             emit)
        node_ids = found + tuple(t for t in settings.add_tests if t not in found)

    emit(JobEvent("resolve", text=f"model {settings.model}"))
    spec = settings.model_spec
    try:
        budget = plan_budget(settings.budget, model_parameters(spec),
                             models.parameter_count(settings.budget.reference),
                             **_calibrated_speeds(settings))
    except (models.ModelError, ValueError) as exc:
        raise JobError(str(exc)) from None

    emit(JobEvent("load", text=f"{settings.model} ({settings.backend})"))
    try:
        opened = open_model(spec)
        template = opened.template(settings.template)
    except (models.ModelError, BackendError, ValueError) as exc:
        raise JobError(str(exc)) from None
    if template.fallback:
        warnings.append(template.reason)
    model = opened.backend
    # Other stubs in the file would teach the model to write one more stub: show their signatures
    # and docstrings only.
    context = without_stub_bodies(text, keep=function)
    prompt = body_prompt(context, locate_function(context, function), template.template)
    sampling = SamplingParams(**{**settings.sampling.__dict__,
                                 "stop": tuple(settings.sampling.stop) + prompt.stops})
    plan = plan_sampling(budget.samples, bool(node_ids), settings.anytime, settings.seconds,
                         settings.max_samples, settings.batch_size, budget.seconds)
    job = _GenerateAndTest(model, prompt.text, sampling, plan, _Target(
        text, site, str(path), rel_file, project, node_ids, function), info, settings, emit,
        should_stop, start)
    status, selected, message, rankings = job.run()
    if plan.note:
        warnings.append(plan.note)
    report = JobReport(
        status=status,
        file=str(path),
        function=function,
        project=str(project),
        model={**opened.to_json(), "template": prompt.template.name,
               "template_reason": template.reason},
        budget=budget,
        tests=node_ids,
        candidates=job.candidates,
        selected=selected,
        sandbox=info.kind,
        warnings=warnings,
        seconds=time.monotonic() - start,
        generation_seconds=busy_seconds(job.decoding),
        message=message,
        source_text=text,
        rankings=rankings,
        usage=job.usage,
        plan=plan,
        pipelined=settings.pipeline and bool(node_ids),
        testing_seconds=busy_seconds(job.testing),
        overlap_seconds=overlap_seconds(job.decoding, job.testing),
        batches=job.batches,
    )
    emit(JobEvent("done", text=status, seconds=time.monotonic() - start))
    return report


def _calibrated_speeds(settings: JobSettings) -> dict:
    """The measured speeds of both models for a time budget, if calibrated: on this machine, or
    for backend openai at the endpoints ``budgetpass calibrate --endpoint`` measured (the reference
    may be served elsewhere); uncalibrated, the budget falls back to FLOPs and says so."""
    backend = choose_backend(settings.backend).name
    if settings.budget.metric != "time":
        return {}
    if backend == "openai":
        return {"small_speed": calibration.lookup_served(settings.model, settings.endpoint),
                "reference_speed": calibration.lookup_served(settings.budget.reference)}
    return {"small_speed": calibration.lookup(models.resolve(settings.model).sha256, backend,
                                              settings.threads),
            "reference_speed": calibration.lookup_model(settings.budget.reference, backend,
                                                        settings.threads)}


@dataclass(frozen=True)
class _Target:
    """The function being filled and where its candidates run."""

    text: str
    site: object  # generation.source.FunctionSite
    filename: str
    rel_file: str
    project: Path
    node_ids: tuple[str, ...]
    function: str


def _start_worker(target: _Target, info, settings: JobSettings) -> WarmWorker:
    python = settings.python or default_python(target.project)
    worker = WarmWorker(target.project, info, settings.limits, python, settings.parallel,
                        preload=tuple(sorted(test_imports(target.project, target.node_ids))),
                        pytest_args=settings.pytest_args)
    try:
        worker.start()
    except WorkerError as exc:
        raise JobError(f"{exc}; try --sandbox process if bubblewrap is broken here") from None
    return worker


class _Tester:
    """Candidates in as they are decoded, test results out: the warm worker driven by a
    ``TestSchedule`` (best log-prob first, each distinct body once, stop at the first full pass)."""

    def __init__(self, worker: WarmWorker, target: _Target, settings: JobSettings, emit,
                 start: float):
        self.worker, self.target, self.emit, self.start = worker, target, emit, start
        self.schedule = TestSchedule(worker.parallel, settings.stop_at_first_pass)
        self.by_body: dict[str, list[Candidate]] = {}
        self.runs: dict[int, str] = {}  # run id -> body
        self.intervals: list[tuple[float, float]] = []  # (submitted, finished), since start
        self.passing = 0

    def add(self, cand: Candidate) -> None:
        """A candidate that parses; one with the body of an earlier one shares its run."""
        self.by_body.setdefault(cand.body, []).append(cand)
        if not self.schedule.add(cand.body, (-cand.mean_logprob, len(cand.body))):
            first = self.by_body[cand.body][0]
            cand.run, cand.test_started_at = first.run, first.test_started_at
            cand.test_ended_at = first.test_ended_at

    def pump(self, timeout: float | None, total: int) -> None:
        """Start what may start, then take one finished run (waiting up to ``timeout``)."""
        for body in self.schedule.to_start():
            run_id = self.worker.submit(self.target.rel_file,
                                        splice_body(self.target.text, self.target.site, body),
                                        self.target.node_ids)
            self.runs[run_id] = body
            self.schedule.started(body, run_id)
            for cand in self.by_body[body]:
                cand.test_started_at = self._now()
        if not self.schedule.running:
            return
        got = self.worker.next_result(timeout)
        if got is None:
            return
        run_id, run = got
        body, cancel = self.schedule.finished(run_id, run.passed)
        for other in cancel:
            self.worker.cancel(other)
        cands = self.by_body[self.runs[run_id]]
        self.intervals.append((cands[0].test_started_at, self._now()))
        if body is None:  # cancelled after another passed: not tested, not failing
            for cand in cands:
                cand.test_started_at = None
            return
        self.passing += run.passed
        for cand in cands:
            cand.run, cand.test_ended_at = run, self._now()
        self.emit(JobEvent("test", self.schedule.tested, total,
                           f"candidate {cands[0].index + 1}: {run.summary()}",
                           passing=self.passing, seconds=self._now()))

    def cancel_all(self) -> None:
        for entry in self.schedule.running:
            self.worker.cancel(entry.run_id)

    @property
    def stopped(self) -> bool:
        return self.schedule.stopped

    @property
    def idle(self) -> bool:
        return self.schedule.idle

    def _now(self) -> float:
        return time.monotonic() - self.start


class _GenerateAndTest:
    """Sampling in a thread (batch after batch in anytime mode) while this thread tests each
    candidate the moment it is decoded; a pass cancels the rest of the decoding.

    Without tests, or with ``pipeline`` off, testing (or ranking) waits for the last candidate.
    """

    def __init__(self, model, prompt: str, sampling: SamplingParams, plan: SamplingPlan,
                 target: _Target, info, settings: JobSettings, emit, should_stop, start: float):
        self.model, self.prompt, self.sampling, self.plan = model, prompt, sampling, plan
        self.target, self.info, self.settings = target, info, settings
        self.emit, self.should_stop, self.start = emit, should_stop, start
        self.candidates: list[Candidate] = []
        self.by_index: dict[int, Candidate] = {}
        self.decoding: list[tuple[float, float]] = []  # each batch's (start, end), since start
        self.usage: BudgetUsage | None = None
        self.batches = 0
        self.samples = 0  # sequences started
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.halt = threading.Event()  # a pass (or a failure here) ends the sampling
        self.tester: _Tester | None = None
        self.batch_began = 0.0

    def _cancelled(self) -> bool:
        return bool(self.should_stop and self.should_stop())

    def _sample(self) -> None:
        """The sampling thread: every event goes through the queue to the job's thread."""
        put = self.events.put
        try:
            put(("batch_start", self.plan.batch_size, time.monotonic()))
            for batch in anytime_batches(
                    self.model, self.prompt, self.sampling, self.plan.max_samples,
                    self.plan.batch_size, self.plan.max_seconds,
                    should_stop=lambda: self.halt.is_set() or self._cancelled(),
                    on_token=lambda n: put(("tokens", n, time.monotonic())),
                    on_complete=lambda c: put(("complete", c, time.monotonic()))):
                put(("batch", batch, time.monotonic()))
                if not batch.last and not self.halt.is_set():
                    put(("batch_start", min(self.plan.batch_size,
                                            self.plan.max_samples - batch.usage.used_samples),
                         time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the job's thread
            put(("error", exc, time.monotonic()))
        finally:
            put(("end", None, time.monotonic()))

    def run(self) -> tuple[str, int | None, str, dict]:
        """(status, selected index, message, rankings)."""
        thread = threading.Thread(target=self._sample, daemon=True, name="budgetpass-sample")
        thread.start()
        try:
            return self._drive()
        finally:
            self.halt.set()
            thread.join()
            if self.tester is not None:
                self.tester.worker.close()

    def _drive(self):
        target, node_ids = self.target, self.target.node_ids
        if self.settings.pipeline:  # the sandbox warms up while the prompt is evaluated
            self.tester = _Tester(_start_worker(target, self.info, self.settings), target,
                                  self.settings, self.emit, self.start)
        sampled = False
        while True:
            if self._cancelled():
                if self.tester is not None:
                    self.tester.cancel_all()
                raise JobError("cancelled")
            testing = self.tester is not None and node_ids and (self.settings.pipeline or sampled)
            if testing:  # waits a little for a result while tests run
                self.tester.pump(0.01, self._total())
            busy = testing and self.tester.schedule.running
            sampled = self._drain(None if busy else 0.05) or sampled
            if self.tester is not None and self.tester.stopped:
                self.halt.set()
            if sampled:
                if self.tester is None:
                    if not any(c.parses for c in self.candidates):
                        break
                    self.tester = _Tester(_start_worker(target, self.info, self.settings),
                                          target, self.settings, self.emit, self.start)
                    for cand in self.candidates:
                        if cand.parses and node_ids:
                            self.tester.add(cand)
                    if node_ids:
                        self.emit(JobEvent("test", 0, self._total(),
                                           f"testing {self.tester.schedule.known} distinct "
                                           "candidates", seconds=self._now()))
                    continue
                if not node_ids or self.tester.idle:
                    break
        return self._select()

    def _drain(self, timeout: float | None) -> bool:
        """Handle the sampling thread's events; True once it has ended."""
        ended = False
        while True:
            try:
                kind, item, at = (self.events.get(timeout=timeout) if timeout
                                  else self.events.get_nowait())
            except queue.Empty:
                return ended
            timeout = None
            if kind == "tokens":
                self.emit(JobEvent("generate", item, self.samples * self.sampling.max_tokens,
                                   f"sampling {self.samples} candidates", samples=self.samples,
                                   seconds=at - self.start))
            elif kind == "batch_start":
                self.samples += item
                self.batch_began = at - self.start
                self.emit(JobEvent("generate", 0, self.samples * self.sampling.max_tokens,
                                   f"sampling {self.samples} candidates", samples=self.samples,
                                   seconds=at - self.start))
            elif kind == "complete":
                self._decoded(item, at)
            elif kind == "batch":
                self.batches += 1
                self.usage = item.usage
                self.decoding.append((self.batch_began, at - self.start))
                for completion in item.completions:  # cancelled ones, and any not announced
                    if completion.index not in self.by_index:
                        self._decoded(completion, at)
            elif kind == "error":
                raise item
            elif kind == "end":
                ended = True

    def _decoded(self, completion: Completion, at: float) -> None:
        target = self.target
        cand = _candidate(completion, target.text, target.site, target.filename)
        if not cand.decoded:
            cand.problem = "not decoded to the end " + (
                "(another candidate had passed)" if self.halt.is_set()
                and not self._cancelled() else "(cancelled)")
            cand.parses = False
        cand.decoded_at = at - self.start if cand.decoded else None
        self.by_index[cand.index] = cand
        self.candidates.append(cand)
        self.candidates.sort(key=lambda c: c.index)
        if cand.parses and target.node_ids and self.tester is not None:
            self.tester.add(cand)

    def _total(self) -> int:
        """Distinct candidates to test so far plus those still decoding (an upper bound)."""
        decoding = max(0, self.samples - len(self.candidates))
        return (self.tester.schedule.known if self.tester else 0) + decoding

    def _now(self) -> float:
        return time.monotonic() - self.start

    def _select(self):
        worker = self.tester.worker if self.tester is not None else None
        return _choose(self.candidates, self.target, worker, self.settings, self.emit)

    @property
    def testing(self) -> list[tuple[float, float]]:
        return self.tester.intervals if self.tester else []


def _verify_and_select(candidates, text, site, rel_file, project, node_ids, info, settings, emit,
                       should_stop, function):
    """Candidates already generated: (status, selected index, message, rankings)."""
    target = _Target(text, site, rel_file, rel_file, Path(project), tuple(node_ids), function)
    if not any(c.parses for c in candidates):
        return _choose(candidates, target, None, settings, emit)
    with _start_worker(target, info, settings) as worker:
        if node_ids:
            tester = _Tester(worker, target, settings, emit, time.monotonic())
            for cand in candidates:
                if cand.parses:
                    tester.add(cand)
            emit(JobEvent("test", 0, tester.schedule.known,
                          f"testing {tester.schedule.known} distinct candidates"))
            while not tester.idle:
                if should_stop and should_stop():
                    tester.cancel_all()
                    raise JobError("cancelled")
                tester.pump(None, tester.schedule.known)
        return _choose(candidates, target, worker, settings, emit)


def _choose(candidates, target: _Target, worker, settings, emit):
    """(status, selected index, message, rankings) once every candidate is in: the tests decide
    when there are any, else the rankers (``worker``: a started one, for execution-based ones)."""
    usable = rank_by_mean_logprob([c for c in candidates if c.parses], lambda c: c.mean_logprob,
                                  lambda c: len(c.body))
    if not usable:
        return "failed", None, f"none of {len(candidates)} candidates parses", {}
    if target.node_ids:
        return (*_tested_outcome(usable, candidates, target.node_ids), {})
    emit(JobEvent("test", 0, len(usable), f"ranking {len(usable)} candidates"))
    return _rank_candidates(worker, usable, candidates, target.text, target.site, target.rel_file,
                            target.project, settings, emit, target.function)


def _tested_outcome(usable, candidates, node_ids):
    """(status, selected index, message) by the tests' results (see select.choose_tested)."""
    tested = [TestedCandidate(c.index, c.mean_logprob, len(c.body), c.run.n_passed, c.run.passed)
              for c in usable if c.run is not None]
    status, choice = choose_tested(tested)
    n = len(node_ids)
    if status == "passed":
        untested = sum(c.run is None for c in usable)
        undecoded = sum(not c.decoded for c in candidates)
        notes = ([f"{untested} not tested"] if untested else []) + (
            [f"{undecoded} not decoded to the end"] if undecoded else [])
        return ("passed", choice.index,
                f"candidate {choice.index + 1} of {len(candidates)} passes all {n} selected tests"
                + (f" ({', '.join(notes)}: stopped at the first pass)" if notes else ""))
    if status == "partial":
        return ("partial", choice.index,
                (f"PARTIAL: no candidate passes all {n} selected tests; candidate "
                f"{choice.index + 1} passes the most ({choice.n_passed} of {n}); review the failures"))
    return ("failed", None, (f"none of {len(candidates)} candidates passes any of the {n} "
                            "selected tests; try a larger budget or look at the failures"))


def _rank_candidates(worker, usable, candidates, text, site, rel_file, project, settings, emit,
                     function):
    """No tests: rankers order the candidates; the answer is UNVERIFIED."""
    examples = docstring_examples(text, function) + call_site_inputs(project, function)
    inputs = [RankInput(c.index, splice_body(text, site, c.body), c.mean_logprob, len(c.body))
              for c in usable]
    emit(JobEvent("test", 0, len(usable), f"ranking {len(usable)} candidates"))
    try:
        rankings = rank_candidates(inputs, function, settings.rankers, worker, rel_file, examples)
    except ValueError as exc:
        raise JobError(str(exc)) from None
    emit(JobEvent("test", len(usable), len(usable), "ranked"))
    usable_rankings = [rankings[n] for n in settings.rankers if rankings.get(n)]
    # A ranker that had nothing to go on (no inputs) gives way to the next one.
    for ranking in sorted(usable_rankings, key=lambda r: r.fallback):
        name = ranking.name
        if ranking.order:
            best = ranking.order[0]
            how = f"{name}" + (f": {ranking.note}" if ranking.note else "")
            return ("ranked", best,
                    (f"no tests reference this function: picked candidate {best + 1} of "
                    f"{len(candidates)} by {how}; UNVERIFIED, review it"), rankings)
    return "failed", None, "no tests found and no ranker could order the candidates", rankings


def write_selected(report: JobReport) -> None:
    """Replace only the function's body, refusing if the file changed since the job read it."""
    if report.selected_body is None:
        raise JobError("no candidate was selected; nothing was written")
    path = Path(report.file)
    current = _read(path)
    if current != report.source_text:
        raise JobError(f"{path} changed while the job ran; nothing was written")
    site = locate_function(current, report.function, filename=str(path))
    new_text = splice_body(current, site, report.selected_body)
    tmp = path.with_name(f".{path.name}.budgetpass.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    report.written = True
