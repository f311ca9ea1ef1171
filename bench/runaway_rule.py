"""What the runaway cut costs and saves, replayed on the committed HumanEval samples.

Every sample of the small model in ``results/reallocation.json`` (chat prompts, the product's
default) and ``results/reallocation-fim.json`` (FIM prompts, where runaways were common) was drawn
without runaway control, with its length, finish reason and test outcome recorded. Each task's n
samples are split into batches of k (the product's FLOPs-matched batch sizes) and replayed through
the product's own ``RunawayGuard`` in lockstep, as a batched decode runs: at each step the
candidates that end on their own there report it, and every other candidate still decoding gets a
verdict. Per rule: passing and failing samples cut, batches whose only passes were cut (a task
the job would have solved with that batch), and the share of decode steps saved (a batch lasts
as long as its longest candidate). Loop detection is not replayed (the token ids are not kept);
it is independent of the length rule chosen here. Writes bench/results/runaway_rule.json.

    .venv/bin/python -m budgetpass.bench.runaway_rule
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from budgetpass.generation.runaway import DEFAULT_RUNAWAY, RunawayGuard, RunawayRule

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = {"chat": "reallocation.json", "fim": "reallocation-fim.json"}
BATCH_SIZES = (3, 6)  # k for b = 1 and b = 2 reference samples (0.5B vs 1.5B by FLOPs)
RULES = [RunawayRule(factor=f, floor=floor) for f, floor in
         ((3, 64), (3, 128), (4, 128), (4, 160), (4, 192), (5, 160), (5, 192), (6, 192), (4, 256))]


@dataclass
class Replay:
    cut_passing: int = 0
    cut_failing: int = 0
    samples: int = 0
    batches: int = 0
    batches_losing_their_passes: int = 0
    steps: int = 0  # sum over batches of the longest candidate's tokens, after the cut
    steps_uncut: int = 0


def replay_batch(rule: RunawayRule, tokens: list[int], reasons: list[str], passed: list[bool],
                 result: Replay) -> None:
    guard = RunawayGuard(rule, len(tokens))
    cut_at: dict[int, int] = {}
    running = set(range(len(tokens)))
    step = 0
    while running:
        step += 1
        for i in sorted(running):  # those ending on their own at this step first, as decoded
            if tokens[i] == step:
                running.discard(i)
                if reasons[i] == "stop":
                    guard.finished(step)
        # Every candidate still decoding has ``step`` tokens, so one verdict holds for them all
        # (distinct tokens: no loop verdicts).
        if running and guard.verdict(range(step)) is not None:
            cut_at.update(dict.fromkeys(running, step))
            running.clear()
    result.samples += len(tokens)
    result.batches += 1
    result.cut_passing += sum(passed[i] for i in cut_at)
    result.cut_failing += sum(not passed[i] for i in cut_at)
    kept_pass = any(p for i, p in enumerate(passed) if i not in cut_at)
    result.batches_losing_their_passes += any(passed) and not kept_pass
    result.steps += step
    result.steps_uncut += max(tokens)


def replay(rule: RunawayRule, tasks: list[dict], k: int) -> Replay:
    result = Replay()
    for task in tasks:
        small = task["small"]
        n = len(small["tokens"])
        for start in range(0, n - k + 1, k):
            part = slice(start, start + k)
            replay_batch(rule, [max(1, t) for t in small["tokens"][part]],
                         small["finish_reason"][part], small["passed"][part], result)
    return result


def main() -> None:
    rows = []
    for style, name in RUNS.items():
        tasks = json.loads((RESULTS / name).read_text())["tasks_detail"]
        for rule in RULES:
            for k in BATCH_SIZES:
                r = replay(rule, tasks, k)
                row = {"prompts": style, "k": k, "factor": rule.factor, "floor": rule.floor,
                       **asdict(r), "steps_saved": round(1 - r.steps / r.steps_uncut, 4)}
                rows.append(row)
                print(f"{style:4} k={k} {rule.factor:g} x, floor {rule.floor:3}: cut "
                      f"{r.cut_passing:2} passing / {r.cut_failing:2} failing, "
                      f"{r.batches_losing_their_passes:2}/{r.batches} batches lose their passes, "
                      f"{100 * row['steps_saved']:4.1f}% of steps saved")

    def pick(style, rule):
        return {f"k{row['k']}": {key: row[key] for key in (
            "cut_passing", "cut_failing", "batches_losing_their_passes", "batches",
            "steps_saved")} for row in rows if row["prompts"] == style
            and (row["factor"], row["floor"]) == (rule.factor, rule.floor)}

    old = RunawayRule(factor=3, floor=64)
    summary = {"default": {"factor": DEFAULT_RUNAWAY.factor, "floor": DEFAULT_RUNAWAY.floor},
               **{f"{style}_default": pick(style, DEFAULT_RUNAWAY) for style in RUNS},
               **{f"{style}_3x_64": pick(style, old) for style in RUNS}}
    out = RESULTS / "runaway_rule.json"
    out.write_text(json.dumps({"summary": summary, "rows": rows,
                               "source": {s: f"bench/results/{n}" for s, n in RUNS.items()},
                               "quorum": DEFAULT_RUNAWAY.quorum}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
