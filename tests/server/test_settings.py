"""Settings of the language server: typed, validated, and a bad value never replaces a good one."""

from budgetpass.server.settings import Settings, parse_settings, unsupported_notes
from budgetpass.server.work import WorkBoard


def test_defaults_work_offline_and_map_to_the_core():
    settings, problems = parse_settings({})
    assert problems == [] and settings == Settings()
    job = settings.job_settings()
    assert job.model == "qwen2.5-coder-0.5b" and job.budget.metric == "flops"
    assert job.budget.reference == "qwen2.5-coder-1.5b" and job.sandbox == "auto"


def test_nested_and_dotted_names_and_partial_updates():
    settings, problems = parse_settings({"budget": {"metric": "samples", "samples": 6},
                                         "inline.debounceMs": 0, "tests": {"timeoutSeconds": 5}})
    assert problems == []
    assert settings.budget.metric == "samples" and settings.budget.samples == 6
    assert settings.inline.debounceMs == 0 and settings.inline.maxTokens == 64
    assert settings.job_settings().limits.wall_seconds == 5
    assert settings.job_settings().trace_tests is False
    traced, problems = parse_settings({"tests": {"trace": True}}, settings)
    assert problems == [] and traced.job_settings().trace_tests is True
    assert settings.job_settings().rankers[0] == "combined"  # the default no-test ranker
    by_execution, problems = parse_settings({"ranking": "execution"}, settings)
    assert problems == [] and by_execution.job_settings().rankers[0] == "execution_agreement"
    again, _ = parse_settings({"budget": {"samples": 2}}, settings)
    assert again.budget.metric == "samples" and again.budget.samples == 2  # the rest is kept


def test_invalid_values_are_named_and_the_old_value_kept():
    before, _ = parse_settings({"budget": {"calls": 2}})
    after, problems = parse_settings({"budget": {"calls": -1, "samples": "many"},
                                      "sandbox": "docker", "inline": {"enable": "yes"},
                                      "tests": {"extraArgs": "-x"}}, before)
    assert after == before
    text = "\n".join(problems)
    for field in ("budgetpass.budget.calls", "budgetpass.budget.samples", "budgetpass.sandbox",
                  "budgetpass.inline.enable", "budgetpass.tests.extraArgs"):
        assert field in text
    assert "keeping 2.0" in text and "auto, bwrap, process" in text


def test_backend_endpoint_and_extra_args_reach_the_job():
    settings, problems = parse_settings({"backend": "openai", "endpoint": "http://127.0.0.1:8080",
                                         "template": "qwen2.5-coder",
                                         "tests": {"extraArgs": ["-k", "not slow", "-x"]}})
    assert problems == [] and unsupported_notes(settings) == []
    job = settings.job_settings()
    assert (job.backend, job.endpoint, job.template) == ("openai", "http://127.0.0.1:8080",
                                                         "qwen2.5-coder")
    assert job.pytest_args == ("-k", "not slow", "-x")
    assert job.model_spec.endpoint == "http://127.0.0.1:8080"
    assert parse_settings({"backend": "llamacpp"})[0].backend == "llama.cpp"
    default = Settings().job_settings()
    assert default.backend == "auto" and default.template is None


def test_bad_backend_settings_say_how_to_fix_them():
    settings, problems = parse_settings({"endpoint": "localhost:8080", "backend": "tpu",
                                         "template": "gpt"})
    assert settings == Settings()
    text = "\n".join(problems)
    assert "budgetpass.endpoint: expected the server's URL, like http://127.0.0.1:8080" in text
    assert "budgetpass.backend: expected one of auto, llama.cpp" in text
    assert 'budgetpass.template: expected one of "", qwen2.5-coder' in text
    openai_without_url, _ = parse_settings({"backend": "openai"})
    assert "needs budgetpass.endpoint" in unsupported_notes(openai_without_url)[0]
    unused, _ = parse_settings({"backend": "llama.cpp", "endpoint": "http://127.0.0.1:9"})
    assert "only used by backend 'openai'" in unsupported_notes(unused)[0]
    assert "only with budgetpass.budget.anytime" in unsupported_notes(
        parse_settings({"budget": {"seconds": 3}})[0])[0]


def test_extra_pytest_args_that_would_change_where_results_go_are_refused_with_the_reason():
    for args, why in ((["--junitxml=out.xml"], "writes results elsewhere"),
                      (["-p", "no:randomly"], "loads or unloads pytest plugins"),
                      (["tests/test_other.py"], "would select other tests"),
                      (["-n", "4"], "other processes"),
                      (["--rootdir=/"], "configuration or folders"),
                      (["--lf"], "selects other files or tests"),
                      (["--frobnicate"], "not one of the pytest options"),
                      (["-k"], "needs a value")):
        settings, problems = parse_settings({"tests": {"extraArgs": args}})
        assert settings.tests.extraArgs == () and len(problems) == 1, args
        assert "budgetpass.tests.extraArgs" in problems[0] and why in problems[0], problems


def test_budget_seconds_bound_generate_until_pass_when_anytime_is_on():
    settings, problems = parse_settings({"budget": {"anytime": True, "seconds": 4}})
    assert problems == [] and unsupported_notes(settings) == []
    job = settings.job_settings()
    assert job.anytime and job.seconds == 4.0
    off = parse_settings({"budget": {"seconds": 4}})[0].job_settings()
    assert not off.anytime and off.seconds is None
    _, problems = parse_settings({"budget": {"seconds": 0, "anytime": "yes"}})
    assert any("budget.seconds" in p for p in problems)
    assert any("budget.anytime" in p for p in problems)


def test_unknown_settings_and_non_objects_are_reported():
    settings, problems = parse_settings({"modle": "x"})
    assert settings == Settings() and "budgetpass.modle: unknown setting" in problems[0]
    settings, problems = parse_settings(["not", "an", "object"])
    assert settings == Settings() and "must be an object" in problems[0]


def test_a_new_inline_request_stops_the_previous_generation_of_the_same_document():
    board = WorkBoard()
    first_serial, first = board.start_inline("file:///a.py")
    _, other_doc = board.start_inline("file:///b.py")
    second_serial, second = board.start_inline("file:///a.py")
    assert first() and "superseded" in first.reason
    assert not second() and not other_doc()
    assert board.is_latest_inline("file:///a.py", second_serial)
    assert not board.is_latest_inline("file:///a.py", first_serial)


def test_one_job_per_document_and_close_stops_its_work():
    board = WorkBoard()
    job = board.start_job("file:///a.py")
    assert job is not None and board.start_job("file:///a.py") is None
    assert board.start_job("file:///b.py") is not None
    board.close("file:///a.py")
    assert job() and job.reason == "document closed"
    assert board.start_job("file:///a.py") is not None
