"""A project installed in its own venv in editable mode (``pip install -e .``, the usual way to
develop one): its tests import the package through what setuptools put in site-packages (a
``.pth`` with the ``src`` folder; for a flat layout a meta-path finder mapping the package to
the user's folder). The candidate must be what the tests run, never the user's file."""

from __future__ import annotations

import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from budgetpass.app.config import build
from budgetpass.app.solve import GivenBodies, Request, solve

pytestmark = pytest.mark.slow  # a venv per layout, then two sandboxed runs

STUB = 'def double(x):\n    """Twice x."""\n    raise NotImplementedError\n'
TEST = "from calc.ops import double\n\n\ndef test_double():\n    assert double(3) == 6\n"


def _editable_venv(venv: Path, package_dir: Path, layout: str) -> str:
    """A venv whose site-packages holds what setuptools' editable install writes (its own
    finder template for a flat layout), and a path to this interpreter's pytest."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip())
    ours = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]]
            if (Path(p) / "_pytest").is_dir()]
    (packages / "zz_host_pytest.pth").write_text(ours[0] + "\n")
    if layout == "src":
        (packages / "__editable__.calc-0.1.pth").write_text(str(package_dir.parent) + "\n")
    else:
        from setuptools.command.editable_wheel import _finder_template

        finder = "__editable___calc_0_1_finder"
        (packages / f"{finder}.py").write_text(
            _finder_template("__editable___calc_0_1_finder", {"calc": str(package_dir)}, {}))
        (packages / "__editable__.calc-0.1.pth").write_text(f"import {finder}; {finder}.install()\n")
    return str(python)


@pytest.mark.parametrize("layout", ["src", "flat"])
def test_an_editable_install_tests_the_candidate_not_the_users_file(tmp_path: Path, layout: str):
    project = tmp_path / "proj"
    package = project / ("src/calc" if layout == "src" else "calc")
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "0.1"\n')
    (package / "__init__.py").write_text("")
    (package / "ops.py").write_text(STUB)
    (project / "tests").mkdir()
    (project / "tests" / "test_ops.py").write_text(TEST)
    python = _editable_venv(tmp_path / "venv", package, layout)
    # The user's own interpreter imports their file: the stub, which fails the test.
    plain = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                           cwd=project, capture_output=True, text=True, check=False)
    assert plain.returncode == 1 and "NotImplementedError" in plain.stdout, plain.stdout
    config = build({"tests.python": python, "tests.stop_at_first_pass": False})
    report = solve(Request(package / "ops.py", "double"), config,
                   source=GivenBodies(["    return x * 3\n", "    return x + x\n"]))
    assert report.tests == ("tests/test_ops.py::test_double",)
    assert [c.run.passed for c in report.candidates] == [False, True], report.message
    assert (package / "ops.py").read_text() == STUB
