"""The main job: fill one function's body with budget-matched samples, keep one the tests pass.

Pure of any editor protocol: the CLI and the language server call ``solve`` and render its report.
The user's project is only read; candidates run in scratch copies.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from budgetpass.generation import calibration, models
from budgetpass.generation.backends import choose_backend
from budgetpass.generation.budget import Budget, BudgetRequest, plan_budget
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

from .discovery import find_tests, test_imports
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
    backend: str = "auto"  # auto | llama.cpp | vllm | openai (generation.backends.choose_backend)
    endpoint: str = ""  # openai: the server's URL, e.g. http://127.0.0.1:8080
    vllm_model: str = ""  # vllm: a Hugging Face folder (default: converted from the GGUF)
    pytest_args: tuple[str, ...] = ()  # extra pytest options (runner.check_pytest_args)

    @property
    def model_spec(self) -> ModelSpec:
        return ModelSpec(self.model, self.backend, self.endpoint, self.threads, self.vllm_model)


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

    def to_json(self) -> dict:
        data = {
            "index": self.index,
            "body": self.body,
            "mean_logprob": round(self.mean_logprob, 4),
            "tokens": self.tokens,
            "finish_reason": self.finish_reason,
            "parses": self.parses,
            "problem": self.problem,
            "tested": self.run is not None,
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
            "budget_used": {"samples": len(self.candidates),
                            "seconds": round(self.generation_seconds, 3),
                            "given_samples": self.budget.samples,
                            "given_seconds": self.budget.seconds},
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
        }


@dataclass(frozen=True)
class JobEvent:
    """Progress: ``phase`` is resolve | load | generate | test | done."""

    phase: str
    done: int = 0
    total: int = 0
    text: str = ""


EventCallback = Callable[[JobEvent], None]


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
    if settings.pin_tests:
        node_ids = tuple(settings.pin_tests)
    else:
        found = find_tests(project, function, target_file=path).node_ids
        node_ids = found + tuple(t for t in settings.add_tests if t not in found)
    try:
        check_pytest_args(settings.pytest_args)
    except ValueError as exc:
        raise JobError(f"extra pytest arguments: {exc}") from None
    info = probe_sandbox(settings.sandbox)
    warnings = [info.warning] if info.warning else []

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
    k = budget.samples
    emit(JobEvent("generate", 0, k * sampling.max_tokens, f"sampling {k} candidates"))
    generation = model.generate(
        prompt.text, k, sampling,
        on_token=lambda n: emit(JobEvent("generate", n, k * sampling.max_tokens,
                                         f"sampling {k} candidates")),
        should_stop=should_stop)
    candidates = [_candidate(c, text, site, str(path)) for c in generation.completions]
    if any(c.finish_reason == "cancelled" for c in candidates):
        raise JobError("cancelled")

    status, selected, message, rankings = _verify_and_select(
        candidates, text, site, rel_file, project, node_ids, info, settings, emit, should_stop,
        function)
    report = JobReport(
        status=status,
        file=str(path),
        function=function,
        project=str(project),
        model={**opened.to_json(), "template": prompt.template.name,
               "template_reason": template.reason},
        budget=budget,
        tests=node_ids,
        candidates=candidates,
        selected=selected,
        sandbox=info.kind,
        warnings=warnings,
        seconds=time.monotonic() - start,
        generation_seconds=generation.seconds,
        message=message,
        source_text=text,
        rankings=rankings,
    )
    emit(JobEvent("done", text=status))
    return report


def _calibrated_speeds(settings: JobSettings) -> dict:
    """This machine's measured speeds of both models for a time budget, if calibrated (a remote
    server's speed is unknown here: the budget falls back to FLOPs and says so)."""
    backend = choose_backend(settings.backend).name
    if settings.budget.metric != "time" or backend == "openai":
        return {}
    return {"small_speed": calibration.lookup(models.resolve(settings.model).sha256, backend,
                                              settings.threads),
            "reference_speed": calibration.lookup_model(settings.budget.reference, backend,
                                                        settings.threads)}


def _verify_and_select(candidates, text, site, rel_file, project, node_ids, info, settings, emit,
                       should_stop, function):
    """(status, selected index, message, rankings): tests decide when there are any."""
    usable = rank_by_mean_logprob([c for c in candidates if c.parses], lambda c: c.mean_logprob,
                                  lambda c: len(c.body))
    if not usable:
        return "failed", None, f"none of {len(candidates)} candidates parses", {}
    python = settings.python or default_python(project)
    worker = WarmWorker(project, info, settings.limits, python, settings.parallel,
                        preload=tuple(sorted(test_imports(project, node_ids))),
                        pytest_args=settings.pytest_args)
    try:
        worker.start()
    except WorkerError as exc:
        raise JobError(f"{exc}; try --sandbox process if bubblewrap is broken here") from None
    with worker:
        if node_ids:
            return (*_test_candidates(worker, usable, candidates, text, site, rel_file, node_ids,
                                      settings, emit, should_stop), {})
        return _rank_candidates(worker, usable, candidates, text, site, rel_file, project,
                                settings, emit, function)


def _test_candidates(worker, usable, candidates, text, site, rel_file, node_ids, settings, emit,
                     should_stop):
    """Best log-prob first, each distinct body once, in parallel; stop at the first full pass."""
    by_body: dict[str, list[Candidate]] = {}
    for cand in usable:
        by_body.setdefault(cand.body, []).append(cand)
    ids = {worker.submit(rel_file, splice_body(text, site, body), node_ids): body
           for body in by_body}
    emit(JobEvent("test", 0, len(ids), f"testing {len(ids)} distinct candidates"))
    done = 0
    stopped = False
    for run_id, run in worker.results():
        if should_stop and should_stop():
            for other in list(ids):
                worker.cancel(other)
            raise JobError("cancelled")
        if stopped and not run.passed:
            continue  # cancelled after another passed: not tested, not failing
        done += 1
        for cand in by_body[ids[run_id]]:
            cand.run = run
        first = by_body[ids[run_id]][0]
        emit(JobEvent("test", done, len(ids), f"candidate {first.index + 1}: {run.summary()}"))
        if run.passed and settings.stop_at_first_pass and not stopped:
            stopped = True
            for other in ids:
                worker.cancel(other)
    tested = [TestedCandidate(c.index, c.mean_logprob, len(c.body), c.run.n_passed, c.run.passed)
              for c in usable if c.run is not None]
    status, choice = choose_tested(tested)
    n = len(node_ids)
    if status == "passed":
        untested = sum(c.run is None for c in usable)
        return ("passed", choice.index,
                f"candidate {choice.index + 1} of {len(candidates)} passes all {n} selected tests"
                + (f" ({untested} not tested: stopped at the first pass)" if untested else ""))
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
