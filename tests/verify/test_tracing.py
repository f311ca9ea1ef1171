"""Dynamic discovery: tests that reach the function through other code, found by tracing a run."""

import os
import time

import pytest
from budgetpass.verify import sandbox
from budgetpass.verify.discovery import find_tests
from budgetpass.verify.runner import default_python
from budgetpass.verify.tracing import TraceError, function_first_lines, traced_tests

CORE = '''"""Cart totals."""
import functools


def subtotal(prices: list[float]) -> float:
    """Sum of the prices."""
    raise NotImplementedError


def total(prices: list[float], tax: float) -> float:
    return round(subtotal(prices) * (1 + tax), 2)


@functools.lru_cache
def rate(name: str) -> float:
    return {"std": 0.2}.get(name, 0.0)
'''
TESTS = '''from cart.core import rate, total


def test_total_adds_tax():
    assert total([10.0, 5.0], 0.1) == 16.5


def test_rate():
    assert rate("std") == 0.2


def test_arithmetic():
    assert 1 + 1 == 2
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETPASS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "cart-project"
    (root / "cart").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "cart"\nversion = "0"\n')
    (root / "cart" / "__init__.py").write_text("")
    (root / "cart" / "core.py").write_text(CORE)
    (root / "tests" / "test_cart.py").write_text(TESTS)
    return root


def test_first_lines_of_plain_and_decorated_functions():
    assert function_first_lines(CORE, "subtotal") == {5}
    assert function_first_lines(CORE, "rate") == {14, 15}
    assert function_first_lines(CORE, "missing") == set()


@pytest.mark.slow
def test_tracing_finds_a_test_that_reaches_the_function_through_another(project):
    assert find_tests(project, "subtotal").node_ids == ()  # static discovery cannot see it
    info, limits = sandbox.probe(), sandbox.Limits(wall_seconds=60)
    python = default_python(project)
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    trace, found = traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, limits)
    assert found == ("tests/test_cart.py::test_total_adds_tax",)
    assert not trace.cached
    _, decorated = traced_tests(project, "cart/core.py", CORE, "rate", python, info, limits)
    assert decorated == ("tests/test_cart.py::test_rate",)
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before

    again, _ = traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, limits)
    assert again.cached and again.calls == trace.calls
    # A changed test file makes the map again.
    test_file = project / "tests" / "test_cart.py"
    test_file.write_text(TESTS + "\n\ndef test_total_again():\n    assert total([1.0], 0) == 1.0\n")
    os.utime(test_file, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    fresh, found = traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, limits)
    assert not fresh.cached
    assert set(found) == {"tests/test_cart.py::test_total_adds_tax",
                          "tests/test_cart.py::test_total_again"}


@pytest.mark.slow
def test_a_job_with_tracing_tests_the_function_through_its_caller(project, qwen_path):
    from budgetpass.app.config import build
    from budgetpass.app.solve import Request, solve

    target = project / "cart" / "core.py"
    config = build({"budget.metric": "samples", "budget.samples": 4,
                    "model.name": str(qwen_path)})  # the cache folder is a temporary one here
    static = solve(Request(target, "subtotal"), config.evolve(**{"tests.trace": "off"}))
    assert static.tests == () and static.status == "ranked"
    # By default ("auto"): no test names it, so the suite runs traced once.
    traced = solve(Request(target, "subtotal"), config)
    assert traced.tests == ("tests/test_cart.py::test_total_adds_tax",)
    assert traced.status == "passed", traced.to_json()
    assert any("dynamic test discovery" in w for w in traced.warnings)
    assert target.read_text() == CORE  # the job never writes


@pytest.mark.slow
def test_a_failed_trace_is_remembered_and_a_request_with_a_deadline_never_runs_one(project):
    """A suite that cannot finish under its limit is not run again for every function that no
    test names (each would wait for it) until a test file changes; an inline request uses a
    cached map only."""
    info, python = sandbox.probe(), default_python(project)
    assert traced_tests(project, "cart/core.py", CORE, "subtotal", python, info,
                        sandbox.Limits(wall_seconds=60), run=False) == (None, ())
    (project / "tests" / "test_slow.py").write_text(
        "import time\n\n\ndef test_slow():\n    time.sleep(30)\n")
    short = sandbox.Limits(wall_seconds=2)
    with pytest.raises(TraceError, match="timed out after 2 s"):
        traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, short)
    started = time.monotonic()
    with pytest.raises(TraceError, match="tried before"):
        traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, short)
    assert time.monotonic() - started < 1.5  # not run again
    (project / "tests" / "test_slow.py").write_text("def test_quick():\n    pass\n")
    trace, found = traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, short)
    assert not trace.cached and found == ("tests/test_cart.py::test_total_adds_tax",)
    cached, _ = traced_tests(project, "cart/core.py", CORE, "subtotal", python, info, short,
                             run=False)
    assert cached.cached
