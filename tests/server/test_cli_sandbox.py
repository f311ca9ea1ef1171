"""The sandbox the CLI asks for: --sandbox, --unsandboxed, and BUDGETPASS_SANDBOX (what
`BUDGETPASS_SANDBOX=process make demo` sets) as the default."""

import pytest
from budgetpass.server.cli import build_parser, main


def sandbox_of(*argv: str) -> str:
    return build_parser().parse_args(["generate", "m.py::f", *argv]).sandbox


def test_sandbox_defaults_to_auto_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("BUDGETPASS_SANDBOX", raising=False)
    assert sandbox_of() == "auto"
    assert sandbox_of("--unsandboxed") == "process"
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "process")
    assert sandbox_of() == "process"
    assert sandbox_of("--sandbox", "bwrap") == "bwrap"  # the command line wins


def test_a_bad_environment_value_is_named(monkeypatch, capsys):
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "none")
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "m.py::f"])
    assert exit_.value.code == 2
    assert "BUDGETPASS_SANDBOX must be one of auto, bwrap, process, not 'none'" in \
        capsys.readouterr().err
