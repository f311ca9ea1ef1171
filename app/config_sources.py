"""The config tree from its two outside sources: an editor's settings (``from_lsp``, partial
updates where a bad value keeps the previous one) and ``budgetpass generate``'s flags
(``from_cli``); and back to the editors' names (``lsp_json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import (
    ALIASES,
    DEFAULTS,
    EDITOR_NAMES,
    SECTION,
    Config,
    ConfigError,
    assemble,
    build,
    check,
)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"budget": {"calls": 2}}`` and ``{"budget.calls": 2}`` both give ``{"budget.calls": 2}``."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def from_lsp(data: Any, previous: Config | None = None) -> tuple[Config, list[str]]:
    """Settings from an editor (the ``budgetpass`` section); fields absent keep ``previous``'s
    value, and so does every invalid or unknown one, each reported by its full name."""
    problems: list[str] = []
    try:
        config = previous or Config()
    except ConfigError as exc:  # a bad BUDGETPASS_SANDBOX: the server still starts, sandboxed
        config = DEFAULTS
        problems.append(f"{exc}; using {DEFAULTS.tests.sandbox}")
    if data is None:
        return config, problems
    if not isinstance(data, dict):
        wrong = type(data).__name__
        return config, [*problems, f"{SECTION}: settings must be an object, got {wrong}"]
    checked: dict[str, Any] = {}
    for name, value in _flatten(data).items():
        if value is None:
            continue  # "unset" in most clients: keep what we have
        try:
            checked[ALIASES.get(name, name)] = check(name, value)
        except ConfigError as exc:
            if name in ALIASES:
                current = _get(config, ALIASES[name])
                problems.append(f"{SECTION}.{exc}; got {value!r}, keeping {_show(current)}")
            else:
                problems.append(f"{SECTION}.{name}: unknown setting (ignored); known: "
                                + ", ".join(sorted(EDITOR_NAMES)))
    return assemble(checked, config), problems


def _get(config: Config, path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def lsp_json(config: Config) -> dict:
    """The settings by the editors' names, nested as VS Code's package.json contributes them."""
    out: dict = {}
    for name, path in EDITOR_NAMES.items():
        value = _get(config, path)
        node = out
        *groups, leaf = name.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    return out


# argparse destinations of ``budgetpass generate`` -> fields of the tree.
CLI_NAMES = {
    "model": "model.name", "backend": "model.backend", "endpoint": "model.endpoint",
    "vllm_model": "model.vllm_model", "template": "model.template", "threads": "model.threads",
    "budget_metric": "budget.metric", "reference": "budget.reference", "calls": "budget.calls",
    "samples": "budget.samples", "seconds": "budget.seconds", "max_samples": "budget.max_samples",
    "batch_size": "budget.batch_size", "repair_share": "budget.repair_share",
    "temperature": "sampling.temperature",
    "top_p": "sampling.top_p", "max_tokens": "sampling.max_tokens", "seed": "sampling.seed",
    "sandbox": "tests.sandbox", "test_timeout": "tests.timeout_seconds", "python": "tests.python",
    "trace_tests": "tests.trace", "prompt_style": "prompt.style",
    "max_context_tokens": "prompt.max_context_tokens", "project": "project",
    "test_memory_mb": "tests.memory_mb", "test_disk_mb": "tests.disk_mb",
}


def from_cli(args: Any) -> Config:
    """The tree from ``budgetpass generate``'s parsed flags; ConfigError names the flag's field."""
    values = {path: getattr(args, dest) for dest, path in CLI_NAMES.items()
              if getattr(args, dest, None) is not None}
    # An endpoint names a server: with backend auto that means the openai backend.
    if values.get("model.endpoint") and values.get("model.backend") == "auto":
        values["model.backend"] = "openai"
    seconds, max_samples = getattr(args, "seconds", None), getattr(args, "max_samples", None)
    values["budget.anytime"] = bool(getattr(args, "anytime", False) or seconds is not None
                                    or max_samples is not None)
    values["tests.pipeline"] = not getattr(args, "no_pipeline", False)
    values["sampling.runaway"] = not getattr(args, "no_runaway", False)
    values["prompt.show_tests"] = not getattr(args, "no_test_calls", False)
    if values.get("project"):
        values["project"] = str(Path(values["project"]))
    # The CLI's anytime without --seconds: a time budget's seconds, else 4 batches.
    values["budget.seconds"] = seconds
    try:
        return build(values)
    except ConfigError as exc:  # say the flag too: "budget.calls (--calls): expected ..."
        name, _, why = str(exc).partition(": ")
        flags = [dest for dest, path in CLI_NAMES.items() if path == name]
        raise ConfigError(f"{name} (--{flags[0].replace('_', '-')}): {why}" if flags
                          else str(exc)) from None
