"""The sandbox asked for: --sandbox, --unsandboxed, and BUDGETPASS_SANDBOX (what
`BUDGETPASS_SANDBOX=process make demo` sets) as tests.sandbox's default in the config tree, for
the CLI and the language server alike."""

from budgetpass.app.config_sources import from_cli, from_lsp
from budgetpass.server.cli import build_parser, main


def sandbox_of(*argv: str) -> str:
    return from_cli(build_parser().parse_args(["generate", "m.py::f", *argv])).tests.sandbox


def test_sandbox_defaults_to_auto_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("BUDGETPASS_SANDBOX", raising=False)
    assert sandbox_of() == "auto"
    assert sandbox_of("--unsandboxed") == "process"
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "process")
    assert sandbox_of() == "process"
    assert sandbox_of("--sandbox", "bwrap") == "bwrap"  # the command line wins


def test_the_language_server_reads_the_same_default(monkeypatch):
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "process")
    assert from_lsp({})[0].tests.sandbox == "process"
    assert from_lsp({"sandbox": "bwrap"})[0].tests.sandbox == "bwrap"  # a setting wins
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "none")  # the server starts and says why
    config, problems = from_lsp({})
    assert config.tests.sandbox == "auto"
    assert problems == ["BUDGETPASS_SANDBOX must be one of auto, bwrap, process, not 'none'; "
                        "using auto"]


def test_a_bad_environment_value_is_named(monkeypatch, capsys):
    monkeypatch.setenv("BUDGETPASS_SANDBOX", "none")
    assert main(["generate", "m.py::f"]) == 2
    assert "BUDGETPASS_SANDBOX must be one of auto, bwrap, process, not 'none'" in \
        capsys.readouterr().err
