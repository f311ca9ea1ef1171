"""The warm worker's judge/executor split keeps the semantics tests rely on, and reports per test.

Hostile candidates are tests/verify/test_attacks.py's; here: correct and wrong candidates of a
project whose tests pass callables, mutate arguments, call methods, expect exceptions, read what
the function printed (doctest) or wrote (tmp_path), get generators back; in the bwrap sandbox and
in the weaker process fallback.
"""

import ast
import os
import sys
from pathlib import Path

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.runner import WarmWorker
from budgetpass.verify.session import run_each

pytestmark = pytest.mark.slow

MODULE = '''import enum


class Color(enum.Enum):
    RED = 1


class Box:
    def __init__(self, items):
        self.items = items

    def total(self):
        raise NotImplementedError


def apply(f, xs):
    """Apply f to each item.

    >>> apply(str, [1, 2])
    ['1', '2']
    >>> shout("hi")
    HI
    """
    raise NotImplementedError


def shout(word):
    raise NotImplementedError


def sort_in_place(xs):
    raise NotImplementedError


def save(path, text):
    raise NotImplementedError


def countdown(n):
    raise NotImplementedError


def parse(text):
    raise NotImplementedError


def pick(color):
    raise NotImplementedError
'''
BODIES = {
    "total": "        return sum(self.items)\n",
    "apply": "    return [f(x) for x in xs]\n",
    "shout": "    print(word.upper())\n",
    "sort_in_place": "    xs.sort()\n",
    "save": "    path.write_text(text)\n",
    "countdown": "    while n:\n        yield n\n        n -= 1\n",
    "parse": "    if not text.isdigit():\n        raise ValueError(text)\n    return int(text)\n",
    "pick": "    return Color.RED if color == 'red' else None\n",
}
TESTS = '''import pytest
from mod import Box, Color, apply, countdown, parse, pick, save, sort_in_place


def test_method():
    assert Box([1, 2]).total() == 3


def test_callback_keeps_its_side_effects():
    seen = []
    assert apply(lambda x: seen.append(x) or x * 2, [1, 2]) == [2, 4]
    assert seen == [1, 2]


def test_mutates_its_argument():
    xs = [3, 1, 2]
    assert sort_in_place(xs) is None
    assert xs == [1, 2, 3]


def test_writes_into_tmp_path(tmp_path):
    save(tmp_path / "out.txt", "hello")
    assert (tmp_path / "out.txt").read_text() == "hello"


def test_generator():
    assert list(countdown(3)) == [3, 2, 1]


def test_exception():
    with pytest.raises(ValueError, match="x"):
        parse("x")
    assert parse("12") == 12


def test_enum():
    assert pick("red") is Color.RED


@pytest.mark.skip(reason="the project skips this one")
def test_skipped_by_the_project():
    assert False
'''
NODES = tuple(f"test_mod.py::{name}" for name in (
    "test_method", "test_callback_keeps_its_side_effects", "test_mutates_its_argument",
    "test_writes_into_tmp_path", "test_generator", "test_exception", "test_enum",
    "test_skipped_by_the_project")) + ("mod.py::mod.apply",)


def fill(text: str, bodies: dict) -> str:
    for name, body in bodies.items():
        stub = ("        raise NotImplementedError\n" if name == "total" else
                "    raise NotImplementedError\n")
        head = f"def {name}("
        start = text.index(head)
        at = text.index(stub, start)
        text = text[:at] + body + text[at + len(stub):]
    return text


@pytest.fixture
def project(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "mod.py").write_text(MODULE)
    (folder / "test_mod.py").write_text(TESTS)
    return folder


@pytest.mark.parametrize("kind", ["bwrap", "process"])
def test_semantics_tests_rely_on_cross_the_boundary(project, kind):
    if kind == "bwrap" and sandbox.probe("auto").kind != "bwrap":
        pytest.skip("no bwrap here")
    with WarmWorker(project, sandbox.probe(kind), sandbox.Limits(wall_seconds=60),
                    sys.executable, parallel=2) as worker:
        good = worker.submit("mod.py", fill(MODULE, BODIES), NODES)
        wrong = worker.submit("mod.py", fill(MODULE, {**BODIES, "sort_in_place": "    xs.sort()\n"
                                                      "    return xs\n",
                                                      "shout": "    return word.upper()\n"}),
                              NODES)
        runs = every_result(worker)
    outcomes = {o.node_id.split("::")[-1]: o.outcome for o in runs[good].outcomes}
    assert runs[good].passed, runs[good].output
    assert outcomes == {**{n.split("::")[-1]: "passed" for n in NODES},
                        "test_skipped_by_the_project": "skipped"}
    failed = {o.node_id.split("::")[-1] for o in runs[wrong].outcomes if o.outcome == "failed"}
    assert not runs[wrong].passed and failed == {"test_mutates_its_argument", "mod.apply"}


def test_the_unsaved_buffer_is_the_trusted_text(project):
    """``original``: the editor's text; only bodies may differ from it, and it is what the judge
    runs, not the file on disk."""
    buffer = MODULE.replace("class Box:", "LIMIT = 3\n\n\nclass Box:")
    candidate = fill(buffer, BODIES)
    with WarmWorker(project, sandbox.probe("auto"), sandbox.Limits(wall_seconds=60),
                    sys.executable, parallel=1) as worker:
        first = worker.submit("mod.py", candidate, NODES[:1], original=buffer)
        second = worker.submit("mod.py", candidate, NODES[:1])  # against the file on disk
        runs = every_result(worker)
    assert runs[first].passed, runs[first].output
    assert not runs[second].passed
    assert "outside function bodies" in runs[second].output


def test_a_run_where_every_test_is_skipped_is_not_passed(project):
    with WarmWorker(project, sandbox.probe("auto"), sandbox.Limits(wall_seconds=60),
                    sys.executable, parallel=1) as worker:
        [run] = run_each(worker, "mod.py", [fill(MODULE, BODIES)],
                         ("test_mod.py::test_skipped_by_the_project",))
    assert [o.outcome for o in run.outcomes] == ["skipped"]
    assert not run.passed


def every_result(worker) -> dict:
    """Every submitted run's result, by id (``next_result`` until none is pending)."""
    runs = {}
    while (got := worker.next_result(None)) is not None:
        runs[got[0]] = got[1]
    return runs


def _fresh(project, source, nodes, info):
    """One candidate in a fresh sandbox and a cold Python (what the warm worker is measured
    against; same isolation and reporting)."""
    with WarmWorker(project, info, sandbox.Limits(wall_seconds=30), sys.executable, parallel=1,
                    warm=False) as worker:
        return run_each(worker, "mod.py", [source], nodes)[0]


def test_a_correct_candidate_passes_with_per_test_outcomes(tmp_path):
    """The cold path (a fresh sandbox and Python per candidate) reports like the warm one."""
    info = sandbox.probe("auto")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text("def target():\n    return 0\n")
    (project / "test_mod.py").write_text(
        "from mod import target\n\n\ndef test_target():\n    assert target() == 42\n\n\n"
        "def test_positive():\n    assert target() > 0\n")
    nodes = ("test_mod.py::test_target", "test_mod.py::test_positive")
    run = _fresh(project, "def target():\n    return 42\n", nodes, info)
    assert run.passed, run.output
    assert [(o.node_id, o.outcome) for o in run.outcomes] == [(n, "passed") for n in nodes]
    wrong = _fresh(project, "def target():\n    return 41\n", nodes, info)
    assert [(o.outcome, (o.message.splitlines() or [""])[0]) for o in wrong.outcomes] == [
        ("failed", "assert 41 == 42"), ("passed", "")]


LAYOUT_TESTS = """import os
import sys

from mod import target


def test_target():
    assert target() == 42


def test_the_worker_package_is_out_of_the_way():
    import budgetpass_worker

    package = os.path.dirname(budgetpass_worker.__file__)
    above = os.path.dirname(package)
    assert package not in sys.path and os.listdir(above) == [os.path.basename(package)]
    assert not any(os.path.isfile(os.path.join(p or ".", "judge_link.py")) for p in sys.path)
    assert not READ_ONLY or os.statvfs(package).f_flag & os.ST_RDONLY
"""


@pytest.mark.parametrize("kind", ["bwrap", "process"])
def test_the_worker_package_shadows_nothing_and_is_read_only(tmp_path, kind):
    """The worker runs as a copied package: only the folder above it is on sys.path (its modules
    never shadow a test dependency of the same name), and in bwrap it is mounted read-only."""
    if kind == "bwrap" and sandbox.probe("auto").kind != "bwrap":
        pytest.skip("no bwrap here")
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mod.py").write_text("def target():\n    return 0\n")
    (project / "test_mod.py").write_text(f"READ_ONLY = {kind == 'bwrap'}\n" + LAYOUT_TESTS)
    nodes = ("test_mod.py::test_target", "test_mod.py::test_the_worker_package_is_out_of_the_way")
    with WarmWorker(project, sandbox.probe(kind), sandbox.Limits(wall_seconds=60),
                    sys.executable, parallel=1) as worker:
        [run] = run_each(worker, "mod.py", ["def target():\n    return 42\n"], nodes)
    assert run.passed, run.output


def test_bwrap_is_available_in_ci():
    if os.environ.get("CI"):
        assert sandbox.probe("auto").kind == "bwrap", sandbox.probe("auto").warning


def test_the_sandbox_sees_the_host_by_allowlist(tmp_path):
    """No home folder, no host /run or /var, no /etc beyond the loader cache and time zone."""
    if sandbox.probe("auto").kind != "bwrap":
        pytest.skip("no bwrap here")
    show = "import os; print((sorted(os.listdir('/')), sorted(os.listdir('/etc'))))"
    argv = sandbox._bwrap_mounts(sys.executable) + ["--unshare-all", "--", sys.executable, "-c",
                                                     show]
    import subprocess

    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    top, etc = ast.literal_eval(out)
    assert not {"home", "root", "run", "var", "srv", "opt", "mnt"} & set(top) - {
        p.split("/")[1] for p in sandbox._needed_paths(sys.executable)}
    assert set(etc) <= {"ld.so.cache", "ld.so.conf", "localtime"}


def test_a_package_that_imports_the_module_under_test_in_its_init(tmp_path):
    """sympy's shape: the package's ``__init__`` imports (through another module) the very module
    whose function is replaced; the candidate's module is the one imported there, once. And the
    function reads a data file by a path relative to the project's root, as under plain pytest."""
    project = tmp_path / "proj"
    (project / "pkg" / "tests").mkdir(parents=True)
    (project / "data").mkdir()
    (project / "data" / "step.txt").write_text("1\n")
    (project / "pyproject.toml").write_text("[project]\nname = 'pkg'\n")
    (project / "pkg" / "__init__.py").write_text("from pkg.core import double_rotate\n")
    (project / "pkg" / "core.py").write_text(
        "from pkg.util import rotate\n\n\ndef double_rotate(xs):\n    return rotate(rotate(xs))\n")
    original = "def rotate(xs):\n    raise NotImplementedError\n"
    (project / "pkg" / "util.py").write_text(original)
    (project / "pkg" / "tests" / "test_util.py").write_text(
        "from pkg import double_rotate\nfrom pkg.util import rotate\n\n\n"
        "def test_rotate():\n    assert rotate([1, 2, 3]) == [2, 3, 1]\n\n\n"
        "def test_through_the_package():\n    assert double_rotate([1, 2, 3]) == [3, 1, 2]\n")
    nodes = ("pkg/tests/test_util.py::test_rotate",
             "pkg/tests/test_util.py::test_through_the_package")
    good = original.replace("    raise NotImplementedError", (
        "    with open('data/step.txt') as handle:\n        step = int(handle.read())\n"
        "    return xs[step:] + xs[:step]"))
    wrong = original.replace("raise NotImplementedError", "return xs")
    with WarmWorker(project, sandbox.probe("auto"), sandbox.Limits(wall_seconds=60),
                    sys.executable, parallel=1) as worker:
        ok, bad = run_each(worker, "pkg/util.py", [good, wrong], nodes)
    assert ok.passed, ok.output
    assert [o.outcome for o in ok.outcomes] == ["passed", "passed"]
    assert [o.outcome for o in bad.outcomes] == ["failed", "failed"], bad.outcomes


def test_the_project_copy_carries_current_bytecode_and_the_judge_drops_what_it_rewrites(tmp_path):
    """The worker's copy keeps the project's bytecode of the tests' interpreter only; a file the
    judge rewrites loses its bytecode (Python's and pytest's), which could otherwise be taken for
    the new text's and run the old code."""
    import py_compile

    from budgetpass.verify.bytecode import bytecode_tag
    from budgetpass.verify.runner import copy_project
    from budgetpass.verify.worker.judge import _being_compiled, _forget_bytecode

    project = tmp_path / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (project / "pkg" / "other.py").write_text("X = 1\n")
    for name in ("mod", "other"):
        py_compile.compile(str(project / "pkg" / f"{name}.py"))
    cache = project / "pkg" / "__pycache__"
    (cache / "mod.cpython-27.pyc").write_bytes(b"another interpreter's")
    (cache / "mod.cpython-311-pytest-9.2.0.pyc").write_bytes(b"pytest's")
    tag = bytecode_tag(sys.executable)
    assert tag == sys.implementation.cache_tag
    copy_project(project, tmp_path / "copy", tag)
    copied = tmp_path / "copy" / "pkg" / "__pycache__"
    assert sorted(p.name for p in copied.iterdir()) == sorted(
        [f"mod.{tag}.pyc", f"other.{tag}.pyc"] + (
            ["mod.cpython-311-pytest-9.2.0.pyc"] if tag == "cpython-311" else []))
    copy_project(project, tmp_path / "plain", None)
    assert not (tmp_path / "plain" / "pkg" / "__pycache__").exists()
    assert bytecode_tag(str(tmp_path / "no-such-python")) is None

    _forget_bytecode(str(tmp_path / "copy" / "pkg" / "mod.py"))
    assert [p.name for p in copied.iterdir()] == [f"other.{tag}.pyc"]
    # A file the host's compiler is still writing (a temporary name, renamed when whole) may
    # vanish while a judge copies the folder: never copied.
    assert _being_compiled("p/__pycache__", [f"m.{tag}.pyc", f"m.{tag}.pyc.140234"]) == [
        f"m.{tag}.pyc.140234"]
    assert _being_compiled("p", ["m.py", "data.pyc.bak"]) == []


@pytest.mark.parametrize(("exit_code", "said", "setup"), [
    (0, {"op": "stopped", "said": "ERROR: usage: pytest [options]: pytest: error: "
                                  "unrecognized arguments: -n"},
     "ERROR: usage: pytest [options]: pytest: error: unrecognized arguments: -n"),
    (1, {"op": "failed", "error": "shutil.Error: [('a', 'b', 'No such file')]"}, None),
])
def test_only_a_pytest_that_returned_without_collecting_is_the_projects_set_up(exit_code, said,
                                                                             setup):
    """The judge exits 0 when pytest.main returned (a usage error, a conftest that does not
    import: the project's set-up, which ends the job) and 1 when the judge itself failed (a
    harness fault, told with its exception: the job goes on). Both are told in the judge's own
    words on its result pipe: what the shared output says (the candidate writes there too) is
    never read into a verdict."""
    from budgetpass.verify.runner import _run_from
    from budgetpass.verify.worker.scheduler import Running
    from budgetpass.verify.worker.verdict import verdict

    forged = ("ERROR: forged by the candidate\nTraceback (most recent call last):\n"
              "E   the candidate's words\n")
    run = Running({"id": 1, "tests": ["test_a.py::test_a"], "limits": {"wall_seconds": 5}},
                  0, "/tmp/s/slot0/run-1", 0.0)
    run.messages.append(said)
    result = _run_from(verdict(run, exit_code << 8, 0.1, forged))
    assert not result.passed
    assert result.setup_failure == setup
    if setup is None:
        assert result.outcomes[0].message.endswith(
            "(exit code 1): shutil.Error: [('a', 'b', 'No such file')]")
    assert "candidate" not in result.outcomes[0].message
    run = Running(run.job, 0, run.rundir, 0.0)  # no word from the judge: none from the output
    result = _run_from(verdict(run, exit_code << 8, 0.1, forged))
    assert "candidate" not in result.outcomes[0].message and not result.passed


def test_why_pytest_stopped_is_its_first_error_and_last_e_line():
    from budgetpass.verify.worker.verdict import why_pytest_stopped

    output = ("ImportError while loading conftest '/tmp/s/slot0/run-1/w/pkg/conftest.py'.\n"
              "pkg/conftest.py:1: in <module>\n    import hypothesis\n"
              "E   ModuleNotFoundError: No module named 'hypothesis'\n")
    assert why_pytest_stopped(output, "/tmp/s/slot0/run-1/w") == (
        "ImportError while loading conftest 'pkg/conftest.py': "
        "ModuleNotFoundError: No module named 'hypothesis'")
    assert why_pytest_stopped("", "/w") == "no output"


def test_the_hosts_bytecode_for_the_copy_is_what_python_and_pytest_would_read(tmp_path):
    """Modules get their bytecode, test files pytest's cached rewrite (used by the judge's
    pytest, which checks it against the source's hash); nothing runs the project's code."""
    from importlib.util import cache_from_source

    from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc
    from budgetpass.verify.bytecode import compile_copy

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("raise SystemExit('never run')\n")
    (tmp_path / "pkg" / "test_mod.py").write_text("def test_it():\n    assert 1 + 1 == 2\n")
    (tmp_path / "conftest.py").write_text("raise SystemExit('never run either')\n")
    compile_copy(tmp_path)
    assert Path(cache_from_source(str(tmp_path / "pkg" / "mod.py"))).is_file()
    assert not Path(cache_from_source(str(tmp_path / "pkg" / "test_mod.py"))).exists()
    for test in (tmp_path / "pkg" / "test_mod.py", tmp_path / "conftest.py"):
        code = _read_pyc(test, test.parent / "__pycache__" / (test.name[:-3] + PYC_TAIL))
        assert code is not None, test
    assert "@pytest_ar" in code_names(tmp_path / "pkg" / "test_mod.py", PYC_TAIL)  # rewritten
    (tmp_path / "pkg" / "test_mod.py").write_text("def test_it():\n    assert 2 + 2 == 4\n")
    stale = tmp_path / "pkg" / "__pycache__" / ("test_mod" + PYC_TAIL)
    assert _read_pyc(tmp_path / "pkg" / "test_mod.py", stale) is None  # another text: not used


def code_names(test: Path, tail: str) -> tuple[str, ...]:
    from _pytest.assertion.rewrite import _read_pyc

    return _read_pyc(test, test.parent / "__pycache__" / (test.name[:-3] + tail)).co_names
