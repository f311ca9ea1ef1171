"""Bytecode for the warm worker's read-only project copy, made by the host beside the worker's start.

Each candidate's judge and executor import the project afresh (the candidate's module must be the
one they run), so without bytecode every candidate compiles the project's sources twice (sympy:
3.3 s each time, 0.8 s from bytecode), and the judge's pytest rewrites the asserts of every test
file again. This writes, into the copy only:

- ``__pycache__/NAME.TAG.pyc`` for the project's modules (``compileall``), where none is current;
- pytest's own cache of a test file's rewritten asserts, ``NAME.TAG-pytest-VERSION.pyc``, through
  pytest's rewriter, when this interpreter's pytest is the tests' (the name says the version).

Nothing of the project runs: compiling and rewriting only parse. Every file is written under a
temporary name and renamed when whole; Python checks a module's bytecode against its source's
mtime and size, pytest a rewritten test's against its source's hash, so a stale or foreign file is
never used. Run as ``python -m budgetpass.verify.bytecode COPY`` (``runner.start_compiling``).
"""

from __future__ import annotations

import compileall
import os
import re
import sys
from pathlib import Path

from .discovery import SKIP_DIRS, is_test_file

# Test modules and conftests: pytest rewrites their asserts (and keeps its own bytecode for them).
NOT_COMPILED = re.compile(r"(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")


def bytecode_tag(python: str) -> str | None:
    """``python``'s bytecode tag when it is this interpreter (or a venv of it), so this
    interpreter may compile the project's modules for it; else None."""
    try:
        same = os.path.realpath(python) == os.path.realpath(
            getattr(sys, "_base_executable", None) or sys.executable)
    except OSError:
        return None
    return sys.implementation.cache_tag if same else None


def compile_copy(copy: Path) -> None:
    compileall.compile_dir(str(copy), quiet=2, rx=NOT_COMPILED, workers=1)
    rewrite_tests(copy)


def rewrite_tests(copy: Path) -> None:
    """pytest's cached rewrite of each test file and conftest, as its import hook would write it
    (``_pytest.assertion.rewrite``: private, so any failure leaves the file to the judge)."""
    try:
        from _pytest.assertion import rewrite
    except ImportError:
        return
    for folder, dirs, files in os.walk(copy):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if not (is_test_file(name) or name == "conftest.py"):
                continue
            source = Path(folder) / name
            cache = Path(folder) / "__pycache__"
            pyc = cache / (name[:-3] + rewrite.PYC_TAIL)
            try:
                if rewrite._read_pyc(source, pyc) is not None:
                    continue  # the project's own, current
                source_hash, code = rewrite._rewrite_test(source, None)
                cache.mkdir(exist_ok=True)
                rewrite._write_pyc(_Quiet(), code, source_hash, pyc)
            except Exception:  # noqa: BLE001, S112 - a file it cannot do is left to the judge
                continue


class _Quiet:
    """The assertion state ``_write_pyc`` reports to: only its ``trace``, unused here."""

    @staticmethod
    def trace(message: str) -> None:
        pass


if __name__ == "__main__":
    compile_copy(Path(sys.argv[1]))
