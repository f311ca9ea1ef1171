"""What a request is about: the function, where its body or the cursor is, the project, its tests,
the prompt, and how a generated text becomes a candidate module.

The one place the application layer calls the function locator (``generation.locate``: by
qualified name, or the function holding a cursor), the project index (``verify.index``: the tests
that select a function, what they import), the prompt builder (``prompts.build_prompt``, through
``prompt`` below) and the body normaliser (``source.normalize_body``, through ``Target.candidate``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

from budgetpass.generation import inline as cursor
from budgetpass.generation import locate as locator
from budgetpass.generation.locate import FunctionSite, SourceError, locate_function
from budgetpass.generation.prompts import (
    BodyRequest,
    ModelPromptInfo,
    Prompt,
    PromptError,
    RepairHint,
    build_prompt,
)
from budgetpass.generation.source import normalize_body, splice_body
from budgetpass.verify import tracing, usage
from budgetpass.verify.discovery import doctests_blocked
from budgetpass.verify.index import project_index
from budgetpass.verify.runner import default_python, find_project_root

from .config import Config
from .report import Candidate, Event, SolveError

KINDS = ("whole_body", "rest_of_line", "at_cursor")
# Why a candidate that does not parse may have been cut short, by its finish_reason.
CUT_SHORT = {"length": "hit the token limit",
             "runaway": "cut as a runaway: far longer than the others, or looping"}


@dataclass(frozen=True)
class Target:
    """The function being filled (``kind`` whole_body) or the cursor's line (rest_of_line)."""

    path: Path
    text: str  # the file as the request gave it (an editor's unsaved buffer included)
    project: Path
    rel_file: str
    function: str  # qualified name
    kind: str  # whole_body | rest_of_line
    site: FunctionSite | None  # a function named by the request: its body's place
    cursor: cursor.CursorContext | None  # a request at a cursor
    test_calls: tuple[str, ...] = ()  # how the selected tests call it (shown in the prompt)

    def compose(self, candidate: str) -> str:
        """The module with ``candidate`` in: the body replaced, or inserted at the cursor."""
        if self.cursor is not None:
            return self.text[:self.cursor.offset] + candidate + self.text[self.cursor.offset:]
        return splice_body(self.text, self.site, candidate)

    def candidate(self, completion, prompt: Prompt | None = None) -> Candidate:
        """A generated completion through the one normaliser (``prompt``: the one it answers, which
        says where a reply at a cursor starts), with the reason it cannot be used if it cannot:
        empty, a stub, only comments, a syntax error."""
        if self.cursor is not None:
            body = cursor.inline_body(completion.text, self.cursor, prompt)
        else:
            body = normalize_body(completion.text, self.site)
        problem, parses = body.problem, False
        if not body.usable:
            pass  # the normaliser said why
        elif self.kind == "rest_of_line":
            parses = True  # one line of a buffer mid-edit: nothing to parse it against
        else:
            try:
                ast.parse(self.compose(body.text), filename=str(self.path))
                parses = True
            except SyntaxError as exc:
                problem = f"syntax error: {exc.msg} (line {exc.lineno})"
        cut = CUT_SHORT.get(completion.finish_reason)
        if cut and not parses:
            problem += f" ({cut})"
        return Candidate(completion.index, body.text, completion.mean_logprob, completion.token_count,
                         completion.finish_reason, parses, problem)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SolveError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SolveError(f"{path}: cannot read it as UTF-8 text: {exc}") from None


def locate(text: str, function: str, path: Path | str = "<buffer>") -> FunctionSite:
    """The function's body by qualified name, or SolveError."""
    try:
        return locate_function(text, function, filename=str(path))
    except SourceError as exc:
        raise SolveError(str(exc)) from None


def at_cursor(text: str, offset: int) -> cursor.CursorContext:
    """The cursor's function and shape (tree-sitter: the buffer may not parse)."""
    return cursor.cursor_context(text, offset)


def resolve(path: Path, text: str, function: str | None, offset: int | None, kind: str,
            config: Config) -> Target:
    """The request's target; SolveError when the file, function or cursor does not fit."""
    if kind not in KINDS:
        raise SolveError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    project = Path(config.project or find_project_root(path)).absolute()
    try:
        rel_file = path.relative_to(project).as_posix()
    except ValueError:
        raise SolveError(f"{path} is not inside the project folder {project}") from None
    if function is not None:
        if kind == "rest_of_line":
            raise SolveError("a rest-of-line request needs a cursor, not a function name")
        return Target(path, text, project, rel_file, function, "whole_body",
                      locate(text, function, path), None)
    if offset is None:
        raise SolveError("name the function or give a cursor offset")
    ctx = at_cursor(text, offset)
    shape = "whole_body" if ctx.multiline else "rest_of_line"
    if kind not in ("at_cursor", shape):
        raise SolveError(f"the cursor asks for {shape.replace('_', ' ')}, not "
                         f"{kind.replace('_', ' ')}")
    if shape == "whole_body" or ctx.function is not None:
        name = ctx.function.qualname
    else:
        name = ""
    return Target(path, text, project, rel_file, name, shape, None, ctx)


def prompt(target: Target, model: ModelPromptInfo, config: Config,
           repair: RepairHint | None = None) -> Prompt:
    """The target's prompt from the one prompt builder, in ``config.prompt``'s style; a whole
    body asked at a cursor is the same request (and prompt) as one asked by name. ``repair``: a
    failed candidate to fix (a function asked by name only)."""
    style, budget = config.prompt.style, config.prompt.max_context_tokens
    try:
        if target.cursor is not None:
            return cursor.inline_prompt(target.cursor, model, style, text=target.text,
                                        path=target.path, project=target.project,
                                        max_context_tokens=budget)
        return build_prompt(BodyRequest(target.text, target.function, target.path,
                                        target.project, repair=repair,
                                        test_calls=target.test_calls), model, style, budget)
    except (PromptError, SourceError) as exc:
        raise SolveError(str(exc)) from None


def tests_for(target: Target, config: Config, sandbox_info, warnings: list[str],
              emit, may_run_suite: bool = True) -> tuple[str, ...]:
    """The node ids that select the function (pinned, found, traced, added). ``may_run_suite``
    False (a request with a deadline): a traced map is used only if cached."""
    tests = config.tests
    if tests.pin:
        return tuple(tests.pin)
    if target.kind != "whole_body" or not target.function:
        return ()
    found = project_index(target.project).find_tests(target.function,
                                                     target_file=target.path).node_ids
    blocked = doctests_blocked(target.project)
    if blocked and target.site and ">>>" in (target.site.docstring or ""):
        warnings.append(f"the docstring's examples are not run as a doctest: {blocked}")
    if tests.trace == "always" or (tests.trace == "auto" and not found and not tests.add):
        found += _traced(target, config, sandbox_info, found, warnings, emit, may_run_suite)
    return found + tuple(t for t in tests.add if t not in found)


def with_test_calls(target: Target, node_ids: tuple[str, ...], config: Config) -> Target:
    """The target with the lines of its selected tests that call it (``prompt.show_tests``), for
    a whole body asked by name (inline proposals keep their short prompt: latency first)."""
    if not node_ids or not config.prompt.show_tests or target.kind != "whole_body" \
            or target.cursor is not None:
        return target
    return replace(target, test_calls=usage.test_calls(target.project, node_ids, target.function))


def preload(target: Target, node_ids: tuple[str, ...]) -> tuple[str, ...]:
    """Modules the tests import, for the warm worker to import once."""
    return tuple(sorted(project_index(target.project).test_imports(node_ids)))


def _traced(target: Target, config: Config, info, found, warnings, emit,
            may_run: bool) -> tuple[str, ...]:
    """Node ids that only the traced run finds (the trace maps the file as it is on disk)."""
    if may_run:
        emit(Event("resolve", text="tracing the test suite"))
    try:
        trace, traced = tracing.traced_tests(
            target.project, target.rel_file, read(target.path), target.function,
            config.tests.python or default_python(target.project), info, config.tests.limits,
            run=may_run)
    except (tracing.TraceError, SyntaxError, SolveError) as exc:
        if may_run:
            warnings.append(f"dynamic test discovery failed, static discovery only: {exc}")
        return ()
    if trace is None:
        return ()
    extra = tuple(t for t in traced if t not in found)
    how = "cached" if trace.cached else f"ran the suite in {trace.seconds:.1f} s"
    warnings.append(f"dynamic test discovery ({how}): {len(traced)} tests call "
                    f"{target.function}, {len(extra)} not found statically")
    return extra


def function_at(text: str, offset: int) -> FunctionSite | None:
    """The innermost function holding the cursor, or None."""
    return locator.function_at(text, offset)


def tested_functions(text: str, path: Path) -> list[tuple[FunctionSite, tuple[str, ...]]]:
    """(function, node ids) of each top-level or method function in ``text`` that tests select
    (what a code lens shows): one freshness check of the project index for them all."""
    fns = [f for f in locator.functions(text) if "<locals>" not in f.qualname]
    if not fns:
        return []
    found = project_index(find_project_root(path)).find_tests_of(
        [fn.qualname for fn in fns], target_file=path, located=fns)
    return [(fn, found[fn.qualname].node_ids) for fn in fns if found[fn.qualname].node_ids]
