"""The one configuration tree: every request kind (CLI, LSP command, inline, bench) reads it.

Typed with attrs, structured with a strict cattrs converter: a value of the wrong type or outside
its limits is refused with the dotted field name (``budget.samples: expected a positive number``).
Built three ways: ``Config()`` (defaults that work offline), ``from_cli`` (argparse flags) and
``from_lsp`` (``initializationOptions`` / ``workspace/configuration``, partial updates; a bad value
keeps the previous one and is reported); the last two live in ``config_sources.py``. The editors' camelCase names (``referenceModel``,
``inline.debounceMs``, ``tests.extraArgs``, ...) are aliases of the snake_case fields.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import attrs
import cattrs
from budgetpass.generation import models
from budgetpass.generation.backends import BACKENDS, ModelSpec
from budgetpass.generation.budget import METRICS, BudgetRequest
from budgetpass.generation.prompts import DEFAULT_MAX_CONTEXT_TOKENS, PROMPT_STYLES, TEMPLATES
from budgetpass.generation.runaway import DEFAULT_RUNAWAY
from budgetpass.generation.types import SamplingParams
from budgetpass.verify.runner import check_pytest_args
from budgetpass.verify.sandbox import Limits

SECTION = "budgetpass"  # the LSP settings section
SANDBOXES = ("auto", "bwrap", "process")
SANDBOX_ENV = "BUDGETPASS_SANDBOX"  # tests.sandbox's default (`BUDGETPASS_SANDBOX=process make demo`)
# Without tests the first ranker that can rank picks; the others are computed for the report.
# ``combined`` by default (docstring examples, then execution agreement, then reviewer +
# log-prob): the best no-test ranker on HumanEval (bench/results/ranking.json, reallocation.json).
RANKING_ORDER = {"combined": ("combined", "mean_logprob"),
                 "logprob": ("mean_logprob", "execution_agreement"),
                 "execution": ("execution_agreement", "mean_logprob"),
                 "doctest": ("doctest", "mean_logprob")}
# tests.trace: run the suite under a call tracer never, when no test names the function, or always.
TRACE_MODES = ("off", "auto", "always")
# Older spellings editors may still send, per field: model.backend's "llamacpp"; tests.trace was
# a boolean (true: always; false: off).
VALUE_ALIASES = {"model.backend": {"llamacpp": "llama.cpp"},
                 "tests.trace": {True: "always", False: "off"}}


class ConfigError(ValueError):
    """A setting the user must fix; the message starts with the dotted field name."""


# --- checks (attrs validators; the message says what is expected) -----------------------------


def _one_of(*choices: str):
    def check(_inst, attribute, value):
        if value not in choices:
            shown = [choice or '""' for choice in choices]
            raise ValueError(f"expected one of {', '.join(shown)}")
    return check


def _at_least(low: float):
    def check(_inst, attribute, value):
        if value is not None and value < low:
            raise ValueError("expected a positive number" if low > 0 else "expected zero or more")
    return check


def _positive(_inst, attribute, value):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ValueError("expected a positive number")


def _probability(_inst, attribute, value):
    if not 0 < value <= 1:
        raise ValueError("expected a number in (0, 1]")


def _share(_inst, attribute, value):
    if not 0 <= value <= 1:
        raise ValueError("expected a number in [0, 1]")


def _model_name(_inst, attribute, value):
    if not value.strip():
        raise ValueError("expected a model name or .gguf path")


def _url(_inst, attribute, value):
    if value and not re.fullmatch(r"https?://[^\s/:]+(:\d+)?(/\S*)?", value):
        raise ValueError("expected the server's URL, like http://127.0.0.1:8080")


def _pytest_args(_inst, attribute, value):
    check_pytest_args(value)


def _strs(value) -> tuple[str, ...]:
    return tuple(value)


def sandbox_default() -> str:
    """tests.sandbox when no setting or flag names one: BUDGETPASS_SANDBOX, else auto (the one
    place the environment reaches the tree; the CLI, the language server and tests all read it)."""
    value = os.environ.get(SANDBOX_ENV, "") or "auto"
    if value not in SANDBOXES:
        raise ConfigError(f"{SANDBOX_ENV} must be one of {', '.join(SANDBOXES)}, not {value!r}")
    return value


# --- the tree -----------------------------------------------------------------------------------


@attrs.frozen
class ModelConfig:
    name: str = attrs.field(default=models.DEFAULT_MODEL, validator=_model_name)
    backend: str = attrs.field(default="auto", validator=_one_of(*BACKENDS))
    endpoint: str = attrs.field(default="", validator=_url)  # openai: the server's URL
    vllm_model: str = ""  # vllm: a Hugging Face folder (default: converted from the GGUF)
    template: str = attrs.field(default="", validator=_one_of("", *TEMPLATES))  # "": auto
    threads: int | None = attrs.field(default=None, validator=_at_least(1))

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.name, self.backend, self.endpoint, self.threads, self.vllm_model)


@attrs.frozen
class BudgetConfig:
    metric: str = attrs.field(default="flops", validator=_one_of(*METRICS))
    reference: str = attrs.field(default=models.DEFAULT_REFERENCE, validator=_model_name)
    calls: float = attrs.field(default=1.0, validator=_positive)  # reference samples (flops/time)
    samples: int = attrs.field(default=4, validator=_at_least(1))  # k, for metric samples
    # Generate-until-pass: batches of ``batch_size`` (default: the budget's k) until a candidate
    # passes, ``seconds`` of sampling are spent (None: a time budget's seconds) or ``max_samples``
    # are drawn (default: 256 with seconds, else 4 batches).
    anytime: bool = False
    seconds: float | None = attrs.field(default=10.0, validator=_positive)
    max_samples: int | None = attrs.field(default=None, validator=_at_least(1))
    batch_size: int | None = attrs.field(default=None, validator=_at_least(1))
    # Repair rounds: after a batch without a pass, this share of the next batch (at least one) is
    # asked to fix the closest failed candidate, shown with its failing test's message; 0: off.
    repair_share: float = attrs.field(default=0.5, validator=_share)

    @property
    def request(self) -> BudgetRequest:
        return BudgetRequest(self.metric, self.reference, self.calls, self.samples)


@attrs.frozen
class SamplingConfig:
    temperature: float = attrs.field(default=0.8, validator=_at_least(0))
    top_p: float = attrs.field(default=0.95, validator=_probability)
    max_tokens: int = attrs.field(default=256, validator=_at_least(1))
    seed: int = 0
    # Cut a candidate that runs far past its siblings or loops (generation/runaway.py), so a batch
    # does not wait on it; off: every candidate decodes to a stop or max_tokens.
    runaway: bool = True

    def params(self, stop: tuple[str, ...] = (), max_tokens: int | None = None) -> SamplingParams:
        return SamplingParams(temperature=self.temperature, top_p=self.top_p,
                              max_tokens=max_tokens or self.max_tokens, stop=stop, seed=self.seed,
                              runaway=DEFAULT_RUNAWAY if self.runaway else None)


@attrs.frozen
class TestsConfig:
    __test__ = False  # not a pytest class

    sandbox: str = attrs.field(factory=sandbox_default, validator=_one_of(*SANDBOXES))
    timeout_seconds: float = attrs.field(default=60.0, validator=_positive)  # per candidate run
    # One candidate's run with all its processes: memory, and the files it writes (a project whose
    # tests need more than the defaults raises these).
    memory_mb: int = attrs.field(default=Limits.memory_bytes >> 20, validator=_at_least(64))
    disk_mb: int = attrs.field(default=Limits.disk_bytes >> 20, validator=_at_least(1))
    python: str | None = None  # the project's interpreter; default: its venv or ours
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=_strs, validator=_pytest_args)
    # Run the suite once under a call tracer (cached until a test file changes) to find tests that
    # reach the function through other code (verify/tracing.py): "auto" when no test names it (a
    # helper tested through the public function that calls it), so such a function is still
    # verified; never within an inline request's deadline (its cached map only).
    trace: str = attrs.field(default="auto", validator=_one_of(*TRACE_MODES))
    add: tuple[str, ...] = attrs.field(default=(), converter=_strs)  # node ids besides the found
    pin: tuple[str, ...] = attrs.field(default=(), converter=_strs)  # exactly these, no discovery
    parallel: int | None = attrs.field(default=None, validator=_at_least(1))  # default: 1/core
    stop_at_first_pass: bool = True
    # Test each candidate as soon as it is decoded and cancel the decoding once one passes;
    # False: generate all, then test (the baseline bench/pipeline.py measures against).
    pipeline: bool = True

    @property
    def limits(self) -> Limits:
        return Limits(wall_seconds=self.timeout_seconds, cpu_seconds=int(self.timeout_seconds) + 1,
                      memory_bytes=self.memory_mb << 20, disk_bytes=self.disk_mb << 20)


@attrs.frozen
class RankingConfig:
    prefer: str = attrs.field(default="combined", validator=_one_of(*RANKING_ORDER))

    @property
    def rankers(self) -> tuple[str, ...]:
        return RANKING_ORDER[self.prefer]


@attrs.frozen
class InlineConfig:
    enable: bool = True
    debounce_ms: int = attrs.field(default=75, validator=_at_least(0))
    max_tokens: int = attrs.field(default=64, validator=_at_least(1))
    verify_within_ms: int = attrs.field(default=1500, validator=_at_least(0))  # 0: never test


@attrs.frozen
class CompletionConfig:
    enable: bool = False  # textDocument/completion fallback for clients without inline completion


def _context_tokens(_inst, attribute, value):
    if value < 64:
        raise ValueError("expected 64 or more (tokens of code shown around the body)")


@attrs.frozen
class PromptConfig:
    # How the model is asked for a body (generation.prompts.PROMPT_STYLES): chat (its own chat
    # template), fim, plain; auto: chat when the model has a chat template, else fim. The rest of a
    # line is always asked with fim (or plain).
    style: str = attrs.field(default="auto", validator=_one_of(*PROMPT_STYLES))
    # Tokens of code around a whole body (imports, signatures, the code just above): a function
    # deep in a large module costs about what one in a small file does.
    max_context_tokens: int = attrs.field(default=DEFAULT_MAX_CONTEXT_TOKENS,
                                          validator=_context_tokens)
    # Show the model how the selected tests call the function (a few of their lines, as comments
    # where the body starts): the tests are the specification the body must meet.
    show_tests: bool = True


@attrs.frozen
class Config:
    model: ModelConfig = ModelConfig()
    budget: BudgetConfig = BudgetConfig()
    sampling: SamplingConfig = SamplingConfig()
    tests: TestsConfig = attrs.Factory(TestsConfig)  # read when built: its sandbox's default
    ranking: RankingConfig = RankingConfig()
    inline: InlineConfig = InlineConfig()
    completion: CompletionConfig = CompletionConfig()
    prompt: PromptConfig = PromptConfig()
    project: str | None = None  # the project's root; default: the nearest folder with a marker

    def to_json(self) -> dict:
        return _converter.unstructure(self)

    def evolve(self, **dotted: Any) -> Config:
        """A copy with fields changed by dotted name (``evolve(**{"budget.samples": 2})``)."""
        return build(dotted, self)


DEFAULTS = Config(tests=TestsConfig(sandbox="auto"))  # built in, whatever the environment says


# --- the strict converter and the field table ------------------------------------------------


def _strict(kind: type, test, expected: str):
    def hook(value, _type):
        if isinstance(value, bool) and kind is not bool or not test(value):
            raise ValueError(expected)
        return kind(value)
    return hook


_converter = cattrs.Converter(forbid_extra_keys=True)
_converter.register_structure_hook(bool, _strict(bool, lambda v: isinstance(v, bool),
                                                 "expected true or false"))
_converter.register_structure_hook(int, _strict(
    int, lambda v: isinstance(v, (int, float)) and math.isfinite(v) and v == int(v),
    "expected a whole number"))
_converter.register_structure_hook(float, _strict(
    float, lambda v: isinstance(v, (int, float)) and math.isfinite(v), "expected a number"))
_converter.register_structure_hook(str, _strict(str, lambda v: isinstance(v, str),
                                                "expected a string"))
_strings = _strict(tuple, lambda v: isinstance(v, (list, tuple))
                   and all(isinstance(s, str) for s in v), "expected a list of strings")
_converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _strings)


def _table() -> dict[str, tuple[type, attrs.Attribute]]:
    """Dotted snake_case name -> (owning class, attribute), for every leaf of the tree."""
    table = {}
    for top in attrs.fields(attrs.resolve_types(Config)):
        if attrs.has(top.type):
            for leaf in attrs.fields(attrs.resolve_types(top.type)):
                table[f"{top.name}.{leaf.name}"] = (top.type, leaf)
        else:
            table[top.name] = (Config, top)
    return table


FIELDS = _table()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


# The names the editors use (VS Code's package.json, Neovim's README) -> fields of the tree.
EDITOR_NAMES = {
    "model": "model.name", "referenceModel": "budget.reference", "backend": "model.backend",
    "endpoint": "model.endpoint", "vllmModel": "model.vllm_model", "template": "model.template",
    "budget.metric": "budget.metric", "budget.calls": "budget.calls",
    "budget.samples": "budget.samples", "budget.anytime": "budget.anytime",
    "budget.seconds": "budget.seconds", "budget.repairShare": "budget.repair_share",
    "inline.enable": "inline.enable",
    "inline.debounceMs": "inline.debounce_ms", "inline.maxTokens": "inline.max_tokens",
    "inline.verifyWithinMs": "inline.verify_within_ms", "completion.enable": "completion.enable",
    "tests.extraArgs": "tests.extra_args", "tests.timeoutSeconds": "tests.timeout_seconds",
    "tests.trace": "tests.trace", "sandbox": "tests.sandbox", "ranking": "ranking.prefer",
    "prompt.style": "prompt.style", "prompt.maxContextTokens": "prompt.max_context_tokens",
    "prompt.showTests": "prompt.show_tests",
}
# Every accepted spelling -> the field: snake_case, its camelCase, and the editors' names.
ALIASES = {**{name: name for name in FIELDS},
           **{".".join(_camel(p) for p in name.split(".")): name for name in FIELDS},
           **EDITOR_NAMES}
# The choices editors offer, by their names (VS Code's enums must be exactly these).
EDITOR_CHOICES = {"backend": ("auto", "llama.cpp", *VALUE_ALIASES["model.backend"], "vllm",
                              "openai"),
                  "tests.trace": TRACE_MODES,
                  "template": ("", *TEMPLATES), "budget.metric": tuple(sorted(METRICS)),
                  "sandbox": SANDBOXES, "ranking": tuple(RANKING_ORDER),
                  "prompt.style": PROMPT_STYLES}


def check(name: str, value: Any) -> Any:
    """``value`` for the field called ``name`` (any accepted spelling), converted and validated;
    ConfigError naming the field and what it expects otherwise."""
    path = ALIASES.get(name)
    if path is None:
        raise ConfigError(f"{name}: unknown setting; known: {', '.join(sorted(EDITOR_NAMES))}")
    _owner, attribute = FIELDS[path]
    try:
        if isinstance(value, (str, bool)):
            value = VALUE_ALIASES.get(path, {}).get(value, value)
        converted = _converter.structure(value, attribute.type)
        if attribute.converter is not None:
            converted = attribute.converter(converted)
        if attribute.validator is not None:
            attribute.validator(None, attribute, converted)
    except (ValueError, TypeError, cattrs.BaseValidationError) as exc:
        raise ConfigError(f"{name}: {_reason(exc)}") from None
    return converted


def _reason(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
        return _reason(exc.exceptions[0])
    return str(exc)


def assemble(values: dict[str, Any], base: Config) -> Config:
    """``base`` with the checked ``values`` (dotted snake_case names) put in."""
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for path, value in values.items():
        group, _, leaf = path.partition(".")
        if leaf:
            groups.setdefault(group, {})[leaf] = value
        else:
            top[group] = value
    for group, changed in groups.items():
        top[group] = attrs.evolve(getattr(base, group), **changed)
    return attrs.evolve(base, **top)


def build(values: dict[str, Any], base: Config | None = None) -> Config:
    """``base`` (default: the defaults) with ``values`` by dotted name; the first bad value
    raises ConfigError."""
    checked = {ALIASES.get(name, name): check(name, value) for name, value in values.items()}
    return assemble(checked, base or Config())


def notes(config: Config) -> list[str]:
    """Accepted values the core does not act on (said once, not silently ignored)."""
    said = []
    if config.budget.seconds != attrs.fields(BudgetConfig).seconds.default and not config.budget.anytime:
        said.append(f"{SECTION}.budget.seconds bounds generate-until-pass only with "
                    f"{SECTION}.budget.anytime: true; one batch of k is drawn now")
    if config.model.endpoint and config.model.backend != "openai":
        said.append(f"{SECTION}.endpoint is only used by backend 'openai' (backend is "
                    f"{config.model.backend!r}); ignoring it")
    if config.model.backend == "openai" and not config.model.endpoint:
        said.append(f"{SECTION}.backend 'openai' needs {SECTION}.endpoint, the server's URL "
                    "(e.g. http://127.0.0.1:8080)")
    if config.model.vllm_model and config.model.backend not in ("vllm", "auto"):
        said.append(f"{SECTION}.vllmModel is only used by backend 'vllm'; ignoring it")
    return said
