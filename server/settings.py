"""The language server's settings (section ``budgetpass``): typed, validated, offline defaults.

Protocol-free: the server passes in the JSON it received (``initializationOptions`` or
``workspace/configuration``) and shows the returned problems. A bad value never replaces a good one:
the field keeps its previous value and the problem names the field and how to fix it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from budgetpass.generation import models
from budgetpass.generation.budget import BudgetRequest
from budgetpass.generation.prompts import DEFAULT_MAX_CONTEXT_TOKENS, PROMPT_STYLES, TEMPLATES
from budgetpass.verify.job import JobSettings
from budgetpass.verify.runner import check_pytest_args
from budgetpass.verify.sandbox import Limits

SECTION = "budgetpass"


@dataclass(frozen=True)
class BudgetSettings:
    metric: str = "flops"  # flops | time | samples
    calls: float = 1.0  # budget in reference-model samples (flops, time)
    samples: int = 4  # k (samples)
    seconds: float = 10.0  # anytime: seconds of sampling before giving up
    anytime: bool = False  # generate until pass: batches of k until one passes or seconds are spent


@dataclass(frozen=True)
class InlineSettings:
    enable: bool = True
    debounceMs: int = 75
    maxTokens: int = 64
    verifyWithinMs: int = 1500  # 0: never run tests for inline items


@dataclass(frozen=True)
class TestSettings:
    __test__ = False  # not a pytest class
    extraArgs: tuple[str, ...] = ()
    timeoutSeconds: float = 60.0
    trace: bool = False  # also find tests that reach the function through other code (a traced run)


@dataclass(frozen=True)
class CompletionSettings:
    enable: bool = False  # textDocument/completion fallback for clients without inline completion


@dataclass(frozen=True)
class PromptSettings:
    style: str = "auto"  # generation.prompts.PROMPT_STYLES
    maxContextTokens: int = DEFAULT_MAX_CONTEXT_TOKENS  # code shown around a whole body


# Without tests the first ranker that can rank picks; the others are computed for the report.
# Log-prob first by default: on HumanEval it picked a passing candidate as often as execution
# agreement (bench/results/ranking.json: 53.0% vs 51.2%).
RANKING_ORDER = {"logprob": ("mean_logprob", "execution_agreement"),
                 "execution": ("execution_agreement", "mean_logprob"),
                 "doctest": ("doctest", "mean_logprob")}


@dataclass(frozen=True)
class Settings:
    model: str = models.DEFAULT_MODEL
    referenceModel: str = models.DEFAULT_REFERENCE
    backend: str = "auto"  # auto | llama.cpp | vllm | openai
    endpoint: str = ""  # backend openai: the server's URL, e.g. http://127.0.0.1:8080
    vllmModel: str = ""  # backend vllm: a Hugging Face folder (default: converted from the GGUF)
    template: str = ""  # prompt template override (default: told by the model or its server)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    inline: InlineSettings = field(default_factory=InlineSettings)
    tests: TestSettings = field(default_factory=TestSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    sandbox: str = "auto"
    ranking: str = "logprob"  # without tests, which ranker picks: see RANKING_ORDER

    def budget_request(self) -> BudgetRequest:
        return BudgetRequest(metric=self.budget.metric, reference=self.referenceModel,
                             calls=self.budget.calls, samples=self.budget.samples)

    def job_settings(self, project: Path | None = None) -> JobSettings:
        timeout = self.tests.timeoutSeconds
        return JobSettings(model=self.model, budget=self.budget_request(), sandbox=self.sandbox,
                           limits=Limits(wall_seconds=timeout, cpu_seconds=int(timeout) + 1),
                           project=project, anytime=self.budget.anytime,
                           seconds=self.budget.seconds if self.budget.anytime else None,
                           backend=self.backend, endpoint=self.endpoint,
                           vllm_model=self.vllmModel, template=self.template or None,
                           pytest_args=self.tests.extraArgs, trace_tests=self.tests.trace,
                           rankers=RANKING_ORDER[self.ranking], prompt_style=self.prompt.style,
                           max_context_tokens=self.prompt.maxContextTokens)

    def to_json(self) -> dict:
        def plain(obj):
            if hasattr(obj, "__dataclass_fields__"):
                return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
            return list(obj) if isinstance(obj, tuple) else obj
        return plain(self)


ALIASES = {("backend", "llamacpp"): "llama.cpp"}
CHOICES = {
    "backend": ("auto", "llama.cpp", "llamacpp", "vllm", "openai"),
    "template": ("", *TEMPLATES),  # "": told by the model's vocabulary or its server's name
    "budget.metric": ("flops", "samples", "time"),
    "sandbox": ("auto", "bwrap", "process"),
    "ranking": ("logprob", "execution", "doctest"),
    "prompt.style": PROMPT_STYLES,
}


class SettingsProblem(str):
    """One message for the user, naming the field (``budgetpass.inline.debounceMs: ...``)."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"budget": {"calls": 2}}`` and ``{"budget.calls": 2}`` both become ``{"budget.calls": 2}``."""
    flat: dict[str, Any] = {}
    if not isinstance(data, dict):
        return flat
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _check(name: str, value: Any, default: Any) -> Any:
    """The value converted to the field's type, or ValueError saying what is expected."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ValueError("expected a whole number")
        if name == "prompt.maxContextTokens" and value < 64:
            raise ValueError("expected 64 or more")
        if value < (1 if name in ("budget.samples", "inline.maxTokens") else 0):
            raise ValueError("expected a positive number" if name in ("budget.samples", "inline.maxTokens")
                             else "expected zero or more")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise ValueError("expected a positive number")
        return float(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("expected a list of strings")
        if name == "tests.extraArgs":
            check_pytest_args(value)
        return tuple(value)
    if not isinstance(value, str):
        raise ValueError("expected a string")  # noqa: TRY004
    if name in CHOICES and value not in CHOICES[name]:
        shown = [choice or '""' for choice in CHOICES[name]]
        raise ValueError(f"expected one of {', '.join(shown)}")
    value = ALIASES.get((name, value), value)
    if name in ("model", "referenceModel") and not value.strip():
        raise ValueError("expected a model name or .gguf path")
    if name == "endpoint" and value and not re.fullmatch(r"https?://[^\s/:]+(:\d+)?(/\S*)?", value):
        raise ValueError("expected the server's URL, like http://127.0.0.1:8080")
    return value


def _fields_of(settings: Settings) -> dict[str, tuple[Any, Any]]:
    """Dotted name -> (owner dataclass path, current value)."""
    out = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if hasattr(value, "__dataclass_fields__"):
            for sub in fields(value):
                out[f"{f.name}.{sub.name}"] = (f.name, getattr(value, sub.name))
        else:
            out[f.name] = (None, value)
    return out


def parse_settings(data: Any, previous: Settings | None = None) -> tuple[Settings, list[str]]:
    """New settings from client JSON; invalid or unknown fields keep ``previous`` and are reported.

    Fields absent from ``data`` keep their previous value, so a partial update is fine.
    """
    settings = previous or Settings()
    problems: list[str] = []
    if data is None:
        return settings, problems
    if not isinstance(data, dict):
        return settings, [f"{SECTION}: settings must be an object, got {type(data).__name__}"]
    known = _fields_of(settings)
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in _flatten(data).items():
        if name not in known:
            problems.append(f"{SECTION}.{name}: unknown setting (ignored); known: "
                            + ", ".join(sorted(known)))
            continue
        if value is None:
            continue  # "unset" in most clients: keep what we have
        group, current = known[name]
        try:
            checked = _check(name, value, current)
        except ValueError as exc:
            problems.append(f"{SECTION}.{name}: {exc}; got {value!r}, keeping {_show(current)}")
            continue
        if group:
            groups.setdefault(group, {})[name.split(".", 1)[1]] = checked
        else:
            top[name] = checked
    for group, values in groups.items():
        top[group] = replace(getattr(settings, group), **values)
    settings = replace(settings, **top)
    try:
        settings.budget_request()
    except ValueError as exc:  # pragma: no cover - the field checks above cover BudgetRequest's
        problems.append(f"{SECTION}.budget: {exc}")
        settings = previous or Settings()
    return settings, problems


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def unsupported_notes(settings: Settings) -> list[str]:
    """Accepted values that the core does not act on yet (said once, not silently ignored)."""
    notes = []
    if settings.budget.seconds != BudgetSettings.seconds and not settings.budget.anytime:
        notes.append(f"{SECTION}.budget.seconds bounds generate-until-pass only with "
                     f"{SECTION}.budget.anytime: true; one batch of k is drawn now")
    if settings.endpoint and settings.backend != "openai":
        notes.append(f"{SECTION}.endpoint is only used by backend 'openai' (backend is "
                     f"{settings.backend!r}); ignoring it")
    if settings.backend == "openai" and not settings.endpoint:
        notes.append(f"{SECTION}.backend 'openai' needs {SECTION}.endpoint, the server's URL "
                     "(e.g. http://127.0.0.1:8080)")
    if settings.vllmModel and settings.backend not in ("vllm", "auto"):
        notes.append(f"{SECTION}.vllmModel is only used by backend 'vllm'; ignoring it")
    return notes
