"""The config tree: typed, validated with the field named, editors' names as aliases, and a bad
LSP value never replaces a good one."""

import argparse

import pytest
from budgetpass.app.config import Config, ConfigError, build, notes
from budgetpass.app.config_sources import from_cli, from_lsp, lsp_json
from budgetpass.generation.runaway import DEFAULT_RUNAWAY
from budgetpass.server.cli import build_parser
from budgetpass.verify.sandbox import Limits


def test_defaults_work_offline_and_map_to_the_core():
    config, problems = from_lsp({})
    assert problems == [] and config == Config()
    assert config.model.name == "qwen2.5-coder-0.5b" and config.budget.metric == "flops"
    assert config.budget.reference == "qwen2.5-coder-1.5b" and config.tests.sandbox == "auto"
    assert config.budget.request.reference == "qwen2.5-coder-1.5b"


def test_nested_and_dotted_names_and_partial_updates():
    config, problems = from_lsp({"budget": {"metric": "samples", "samples": 6},
                                 "inline.debounceMs": 0, "tests": {"timeoutSeconds": 5}})
    assert problems == []
    assert config.budget.metric == "samples" and config.budget.samples == 6
    assert config.inline.debounce_ms == 0 and config.inline.max_tokens == 64
    assert config.tests.limits.wall_seconds == 5 and config.tests.trace == "auto"
    for sent, mode in ((True, "always"), (False, "off"), ("off", "off")):  # was a boolean
        traced, problems = from_lsp({"tests": {"trace": sent}}, config)
        assert problems == [] and traced.tests.trace == mode
    kept, problems = from_lsp({"tests": {"trace": "sometimes"}}, config)
    assert kept.tests.trace == "auto" and "expected one of off, auto, always" in problems[0]
    assert config.ranking.rankers[0] == "combined"  # the default no-test ranker
    by_execution, problems = from_lsp({"ranking": "execution"}, config)
    assert problems == [] and by_execution.ranking.rankers[0] == "execution_agreement"
    again, _ = from_lsp({"budget": {"samples": 2}}, config)
    assert again.budget.metric == "samples" and again.budget.samples == 2  # the rest is kept


def test_snake_case_and_camel_case_names_both_work():
    snake, problems = from_lsp({"inline": {"debounce_ms": 5}, "sampling.top_p": 0.5})
    camel, more = from_lsp({"inline": {"debounceMs": 5}, "sampling.topP": 0.5})
    assert problems == more == [] and snake == camel
    assert snake.inline.debounce_ms == 5 and snake.sampling.top_p == 0.5


def test_invalid_values_are_named_and_the_old_value_kept():
    before, _ = from_lsp({"budget": {"calls": 2}})
    after, problems = from_lsp({"budget": {"calls": -1, "samples": "many"},
                                "sandbox": "docker", "inline": {"enable": "yes"},
                                "tests": {"extraArgs": "-x"}}, before)
    assert after == before
    text = "\n".join(problems)
    for field in ("budgetpass.budget.calls", "budgetpass.budget.samples", "budgetpass.sandbox",
                  "budgetpass.inline.enable", "budgetpass.tests.extraArgs"):
        assert field in text
    assert "keeping 2.0" in text and "auto, bwrap, process" in text
    assert len(problems) == 5


def test_backend_endpoint_and_extra_args_reach_the_tree():
    config, problems = from_lsp({"backend": "openai", "endpoint": "http://127.0.0.1:8080",
                                 "template": "qwen2.5-coder",
                                 "tests": {"extraArgs": ["-k", "not slow", "-x"]}})
    assert problems == [] and notes(config) == []
    assert (config.model.backend, config.model.endpoint, config.model.template) == (
        "openai", "http://127.0.0.1:8080", "qwen2.5-coder")
    assert config.tests.extra_args == ("-k", "not slow", "-x")
    assert config.model.spec.endpoint == "http://127.0.0.1:8080"
    assert from_lsp({"backend": "llamacpp"})[0].model.backend == "llama.cpp"
    assert Config().model.backend == "auto" and Config().model.template == ""


def test_bad_backend_settings_say_how_to_fix_them():
    config, problems = from_lsp({"endpoint": "localhost:8080", "backend": "tpu",
                                 "template": "gpt"})
    assert config == Config()
    text = "\n".join(problems)
    assert "budgetpass.endpoint: expected the server's URL, like http://127.0.0.1:8080" in text
    assert "budgetpass.backend: expected one of auto, llama.cpp" in text
    assert 'budgetpass.template: expected one of "", qwen2.5-coder' in text
    openai_without_url, _ = from_lsp({"backend": "openai"})
    assert "needs budgetpass.endpoint" in notes(openai_without_url)[0]
    unused, _ = from_lsp({"backend": "llama.cpp", "endpoint": "http://127.0.0.1:9"})
    assert "only used by backend 'openai'" in notes(unused)[0]
    assert "only with budgetpass.budget.anytime" in notes(from_lsp({"budget": {"seconds": 3}})[0])[0]


def test_extra_pytest_args_that_would_change_where_results_go_are_refused_with_the_reason():
    for args, why in ((["--junitxml=out.xml"], "writes results elsewhere"),
                      (["-p", "no:randomly"], "loads or unloads pytest plugins"),
                      (["tests/test_other.py"], "would select other tests"),
                      (["-n", "4"], "other processes"),
                      (["--rootdir=/"], "configuration or folders"),
                      (["--lf"], "selects other files or tests"),
                      (["--frobnicate"], "not one of the pytest options"),
                      (["-k"], "needs a value")):
        config, problems = from_lsp({"tests": {"extraArgs": args}})
        assert config.tests.extra_args == () and len(problems) == 1, args
        assert "budgetpass.tests.extraArgs" in problems[0] and why in problems[0], problems
    with pytest.raises(ConfigError, match="tests.extra_args: '--junitxml=r.xml' is refused"):
        build({"tests.extra_args": ("--junitxml=r.xml",)})


def test_budget_seconds_bound_generate_until_pass_when_anytime_is_on():
    config, problems = from_lsp({"budget": {"anytime": True, "seconds": 4}})
    assert problems == [] and notes(config) == []
    assert config.budget.anytime and config.budget.seconds == 4.0
    _, problems = from_lsp({"budget": {"seconds": 0, "anytime": "yes"}})
    assert any("budget.seconds" in p for p in problems)
    assert any("budget.anytime" in p for p in problems)


@pytest.mark.parametrize("bad", [{"budget.seconds": 0}, {"budget.seconds": -1.0},
                                 {"budget.max_samples": 0}, {"budget.batch_size": 0},
                                 {"sampling.top_p": 0}, {"tests.parallel": 0},
                                 {"tests.memory_mb": 1}, {"tests.disk_mb": 0}])
def test_empty_budgets_and_limits_are_refused_by_name(bad):
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=name.replace(".", r"\.") + ": expected"):
        build(bad)


def test_unknown_settings_and_non_objects_are_reported():
    config, problems = from_lsp({"modle": "x"})
    assert config == Config() and "budgetpass.modle: unknown setting" in problems[0]
    config, problems = from_lsp(["not", "an", "object"])
    assert config == Config() and "must be an object" in problems[0]


def test_cli_flags_build_the_same_tree():
    args = build_parser().parse_args(["generate", "m.py::f", "--samples", "3", "--budget-metric",
                                      "samples", "--endpoint", "http://127.0.0.1:9",
                                      "--max-samples", "6", "--no-pipeline", "--trace-tests",
                                      "--test-timeout", "5", "--template", "plain"])
    config = from_cli(args)
    assert (config.budget.metric, config.budget.samples) == ("samples", 3)
    assert config.model.backend == "openai", "an endpoint with backend auto means openai"
    assert config.budget.anytime and config.budget.max_samples == 6
    assert config.budget.seconds is None, "the CLI's anytime without --seconds: no time bound"
    assert not config.tests.pipeline and config.tests.trace == "always"
    assert config.tests.limits.wall_seconds == 5 and config.model.template == "plain"
    defaults = from_cli(build_parser().parse_args(["generate", "m.py::f"]))
    assert not defaults.budget.anytime and defaults.tests.pipeline
    assert defaults.tests.trace == "auto"
    static = from_cli(build_parser().parse_args(["generate", "m.py::f", "--no-trace-tests"]))
    assert static.tests.trace == "off"
    assert defaults.sampling == Config().sampling and defaults.model == Config().model
    with pytest.raises(ConfigError, match=r"budget.samples \(--samples\): expected a positive"):
        from_cli(argparse.Namespace(samples=0))


def test_a_candidates_memory_and_disk_are_settings_and_check_shares_the_flags():
    """The limits of one candidate's run a project may need raised (SECURITY.md), the same flags
    for ``generate`` and ``check``, reaching the sandbox's Limits."""
    for command in (["generate", "m.py::f"], ["check", "m.py::f", "--bodies", "b.jsonl"]):
        config = from_cli(build_parser().parse_args(
            [*command, "--test-memory-mb", "512", "--test-disk-mb", "64", "--test-timeout", "7"]))
        limits = config.tests.limits
        assert (limits.memory_bytes, limits.disk_bytes, limits.wall_seconds) == (
            512 << 20, 64 << 20, 7)
    assert Config().tests.limits == Limits(wall_seconds=60, cpu_seconds=61)
    config, problems = from_lsp({"tests": {"memoryMb": 4096, "diskMb": 1024}})
    assert problems == [] and config.tests.limits.disk_bytes == 1024 << 20
    with pytest.raises(ConfigError, match=r"tests.disk_mb \(--test-disk-mb\): expected"):
        from_cli(argparse.Namespace(test_disk_mb=0))


def test_lsp_json_uses_the_editors_names():
    shown = lsp_json(from_lsp({"inline": {"debounceMs": 3}, "tests": {"extraArgs": ["-x"]}})[0])
    assert shown["inline"]["debounceMs"] == 3 and shown["tests"]["extraArgs"] == ["-x"]
    assert shown["referenceModel"] == "qwen2.5-coder-1.5b" and shown["ranking"] == "combined"


def test_runaway_control_is_on_by_default_and_can_be_turned_off():
    assert Config().sampling.params().runaway == DEFAULT_RUNAWAY
    off, problems = from_lsp({"sampling": {"runaway": False}})
    assert problems == [] and off.sampling.params().runaway is None
    cli_off = from_cli(build_parser().parse_args(["generate", "m.py::f", "--no-runaway"]))
    assert cli_off.sampling.params().runaway is None
    assert from_cli(build_parser().parse_args(["generate", "m.py::f"])).sampling.runaway


def test_prompt_settings_by_every_name_and_flag():
    config, problems = from_lsp({"prompt": {"style": "fim", "maxContextTokens": 512}})
    assert problems == [] and config.prompt.style == "fim"
    assert config.prompt.max_context_tokens == 512
    assert build({"prompt.max_context_tokens": 256}).prompt.max_context_tokens == 256
    kept, problems = from_lsp({"prompt": {"style": "chatty", "maxContextTokens": 10}}, config)
    assert kept.prompt == config.prompt and len(problems) == 2
    assert "prompt.style: expected one of auto, fim, chat, plain" in problems[0]
    assert "prompt.maxContextTokens: expected 64 or more" in problems[1]
    args = build_parser().parse_args(["generate", "m.py::f", "--prompt-style", "plain",
                                      "--max-context-tokens", "300"])
    assert from_cli(args).prompt == build({"prompt.style": "plain",
                                           "prompt.maxContextTokens": 300}).prompt
    assert from_cli(build_parser().parse_args(["generate", "m.py::f"])).prompt == Config().prompt
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "m.py::f", "--prompt-style", "chatty"])
    with pytest.raises(ConfigError, match=r"prompt.max_context_tokens \(--max-context-tokens\)"):
        from_cli(argparse.Namespace(max_context_tokens=8))
