"""The main job: fill one function's body with budget-matched samples, keep one the tests pass.

Pure of any editor protocol: the CLI and the language server call ``solve`` and render its report.
The user's project is only read; candidates run in scratch copies.
"""

from __future__ import annotations

import ast
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.budget import Budget, BudgetRequest, plan_budget
from budgetpass.generation.engine import load_model, template_for
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

from .discovery import find_tests
from .runner import CandidateRun, default_python, find_project_root, run_candidate
from .sandbox import Limits
from .sandbox import probe as probe_sandbox
from .select import rank_by_mean_logprob


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
    status: str  # passed | ranked | failed
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
    return Candidate(completion.index, body, completion.mean_logprob, len(completion.token_ids),
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
    selected_tests = find_tests(project, function)
    info = probe_sandbox(settings.sandbox)
    warnings = [info.warning] if info.warning else []

    emit(JobEvent("resolve", text=f"model {settings.model}"))
    try:
        resolved = models.resolve(settings.model)
        budget = plan_budget(settings.budget, resolved.parameters,
                             models.parameter_count(settings.budget.reference))
    except (models.ModelError, ValueError) as exc:
        raise JobError(str(exc)) from None

    emit(JobEvent("load", text=resolved.name))
    model = load_model(resolved.path, settings.threads)
    # Other stubs in the file would teach the model to write one more stub: show their signatures
    # and docstrings only.
    context = without_stub_bodies(text, keep=function)
    prompt = body_prompt(context, locate_function(context, function),
                         template_for(model, settings.template))
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

    status, selected, message = _verify_and_select(
        candidates, text, site, rel_file, project, selected_tests.node_ids, info, settings, emit,
        should_stop)
    report = JobReport(
        status=status,
        file=str(path),
        function=function,
        project=str(project),
        model={**resolved.to_json(), "template": prompt.template.name},
        budget=budget,
        tests=selected_tests.node_ids,
        candidates=candidates,
        selected=selected,
        sandbox=info.kind,
        warnings=warnings,
        seconds=time.monotonic() - start,
        generation_seconds=generation.seconds,
        message=message,
        source_text=text,
    )
    emit(JobEvent("done", text=status))
    return report


def _verify_and_select(candidates, text, site, rel_file, project, node_ids, info, settings, emit,
                       should_stop):
    usable = [c for c in candidates if c.parses]
    if not node_ids:
        if not usable:
            return "failed", None, "no tests found and no candidate parses"
        best = rank_by_mean_logprob(usable, lambda c: c.mean_logprob, lambda c: len(c.body))[0]
        return ("ranked", best.index,
                f"no tests reference this function: picked candidate {best.index + 1} of "
                f"{len(candidates)} by mean log-probability; UNVERIFIED, review it")
    python = settings.python or default_python(project)
    seen: dict[str, CandidateRun] = {}
    with tempfile.TemporaryDirectory(prefix="budgetpass-") as scratch:
        for number, cand in enumerate(usable, 1):
            if should_stop and should_stop():
                raise JobError("cancelled")
            emit(JobEvent("test", number - 1, len(usable), f"testing candidate {cand.index + 1}"))
            if cand.body in seen:
                cand.run = seen[cand.body]
            else:
                folder = Path(scratch) / f"candidate-{cand.index}"
                folder.mkdir()
                cand.run = run_candidate(project, rel_file, splice_body(text, site, cand.body),
                                         node_ids, folder, info, settings.limits, python)
                seen[cand.body] = cand.run
            emit(JobEvent("test", number, len(usable), f"candidate {cand.index + 1}: "
                                                        f"{cand.run.summary()}"))
            if cand.run.passed:
                earlier = cand.index
                return ("passed", cand.index,
                        f"candidate {cand.index + 1} of {len(candidates)} passes all "
                        f"{len(node_ids)} selected tests"
                        + (f" ({earlier} earlier candidate(s) did not)" if earlier else ""))
    return ("failed", None, f"none of {len(candidates)} candidates passes the {len(node_ids)} "
                            "selected tests; try a larger budget or look at the failures")


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
