"""What a request is about: the function, where its body or the cursor is, the project, its tests,
the prompt, and how a generated text becomes a candidate module.

The one place the application layer calls the function locators (``locate_function``, tree-sitter's
``cursor_context``), test discovery (``find_tests``, the traced run) and the prompt builders
(``body_prompt``, ``inline_prompt``): when the project index and the prompt module replace them,
only the functions marked SWAP below change.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation import inline as cursor
from budgetpass.generation.prompts import PromptTemplate, body_prompt
from budgetpass.generation.source import (
    FunctionSite,
    SourceError,
    is_stub,
    locate_function,
    normalize_body,
    splice_body,
    without_stub_bodies,
)
from budgetpass.verify import tracing
from budgetpass.verify.discovery import find_tests, iter_test_files, test_imports
from budgetpass.verify.runner import default_python, find_project_root

from .config import Config
from .report import Candidate, Event, SolveError

KINDS = ("whole_body", "rest_of_line", "at_cursor")


@dataclass(frozen=True)
class Prompt:
    text: str
    stops: tuple[str, ...]
    template: str  # its name, for the report


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

    def compose(self, candidate: str) -> str:
        """The module with ``candidate`` in: the body replaced, or inserted at the cursor."""
        if self.cursor is not None:
            return self.text[:self.cursor.offset] + candidate + self.text[self.cursor.offset:]
        return splice_body(self.text, self.site, candidate)

    def candidate(self, completion) -> Candidate:
        """A generated completion, tidied, with the reason it cannot be used if it cannot."""
        if self.cursor is not None:
            body = cursor.tidy_inline(completion.text, self.cursor)
        else:
            body = normalize_body(completion.text, self.site)
        problem, parses = "", False
        if not body.strip():
            problem = "empty body"
        elif self.kind == "whole_body" and is_stub(body):
            problem = "a stub, not an implementation"
        elif self.kind == "rest_of_line":
            parses = True  # one line of a buffer mid-edit: nothing to parse it against
        else:
            try:
                ast.parse(self.compose(body), filename=str(self.path))
                parses = True
            except SyntaxError as exc:
                problem = f"syntax error: {exc.msg} (line {exc.lineno})"
        if completion.finish_reason == "length" and not parses:
            problem += " (hit the token limit)"
        return Candidate(completion.index, body, completion.mean_logprob, completion.token_count,
                         completion.finish_reason, parses, problem)


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SolveError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SolveError(f"{path}: cannot read it as UTF-8 text: {exc}") from None


def locate(text: str, function: str, path: Path | str = "<buffer>") -> FunctionSite:
    """SWAP (index): the function's body by qualified name, or SolveError."""
    try:
        return locate_function(text, function, filename=str(path))
    except SourceError as exc:
        raise SolveError(str(exc)) from None


def at_cursor(text: str, offset: int) -> cursor.CursorContext:
    """SWAP (index): the cursor's function and shape (tree-sitter: the buffer may not parse)."""
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


def prompt(target: Target, template: PromptTemplate) -> Prompt:
    """SWAP (prompts): the prompt for the target, from the one prompt builder."""
    if target.cursor is not None:
        made = cursor.inline_prompt(target.cursor, template)
        return Prompt(made.text, made.stops, template.name)
    # Other stubs in the file would teach the model to write one more stub: show their
    # signatures and docstrings only.
    context = without_stub_bodies(target.text, keep=target.function)
    made = body_prompt(context, locate_function(context, target.function), template)
    return Prompt(made.text, made.stops, made.template.name)


def tests_for(target: Target, config: Config, sandbox_info, warnings: list[str],
              emit) -> tuple[str, ...]:
    """SWAP (index): the node ids that select the function (pinned, found, traced, added)."""
    tests = config.tests
    if tests.pin:
        return tuple(tests.pin)
    if target.kind != "whole_body" or not target.function:
        return ()
    found = find_tests(target.project, target.function, target_file=target.path).node_ids
    if tests.trace:
        found += _traced(target, config, sandbox_info, found, warnings, emit)
    return found + tuple(t for t in tests.add if t not in found)


def preload(target: Target, node_ids: tuple[str, ...]) -> tuple[str, ...]:
    """SWAP (index): modules the tests import, for the warm worker to import once."""
    return tuple(sorted(test_imports(target.project, node_ids)))


def _traced(target: Target, config: Config, info, found, warnings, emit) -> tuple[str, ...]:
    """Node ids that only the traced run finds (the trace maps the file as it is on disk)."""
    emit(Event("resolve", text="tracing the test suite"))
    try:
        trace, traced = tracing.traced_tests(
            target.project, target.rel_file, read(target.path), target.function,
            config.tests.python or default_python(target.project), info, config.tests.limits)
    except (tracing.TraceError, SyntaxError, SolveError) as exc:
        warnings.append(f"dynamic test discovery failed, static discovery only: {exc}")
        return ()
    extra = tuple(t for t in traced if t not in found)
    how = "cached" if trace.cached else f"ran the suite in {trace.seconds:.1f} s"
    warnings.append(f"dynamic test discovery ({how}): {len(traced)} tests call "
                    f"{target.function}, {len(extra)} not found statically")
    return extra


def function_at(text: str, offset: int):
    """SWAP (index): the innermost function holding the cursor (a ``FunctionAt``), or None."""
    return cursor.function_at(text, offset)


def tested_functions(text: str, path: Path) -> list[tuple[object, tuple[str, ...]]]:
    """SWAP (index): (``FunctionAt``, node ids) of each top-level or method function in ``text``
    that tests select (what a code lens shows)."""
    fns = [f for f in cursor.functions(text) if "<locals>" not in f.qualname]
    if not fns:
        return []
    project = find_project_root(path)
    # A test can only select a function it names: read the test files once and ask discovery only
    # about names that occur in them (a 50k-line module has thousands of functions).
    test_text = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                          for p in iter_test_files(project))
    found = []
    for fn in fns:
        if fn.qualname.split(".")[-1] in test_text:
            tests = find_tests(project, fn.qualname, target_file=path).node_ids
            if tests:
                found.append((fn, tests))
    return found
