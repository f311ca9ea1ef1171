"""The no-test evidence about bench samples, computed once and committed: outputs on probe inputs
and reviewer scores.

For each task the inputs are the product's own (``verify.select.ranking_inputs``: the docstring's
examples in any style, then values from the type hints); never the task's hidden ``test``. Each
distinct program runs on them through the product's path (``select.probe_outputs`` in a
``WarmWorker``) in a project that holds only the candidate's module: the hidden tests are not in
its reach. Reviewer scores are log p(docstring | code) under the small model
(``LlamaCppModel.score`` on ``select.reviewer_prompt``).

Stored in bench/results/notest_signals.json.gz, keyed by sha256 of (task, program), so re-scoring
the benches never runs a candidate or a model again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIGNALS = RESULTS / "notest_signals.json.gz"


def program_key(task_id: str, program: str) -> str:
    return hashlib.sha256(json.dumps([task_id, program]).encode()).hexdigest()[:32]


class SignalStore:
    def __init__(self, path: Path = SIGNALS):
        self.path = path
        self.data = {"inputs": {}, "outputs": {}, "reviewer": {}}
        if path.exists():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                self.data.update(json.load(handle))

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            json.dump(self.data, handle, sort_keys=True)
        tmp.replace(self.path)

    def inputs(self, task_id: str) -> tuple[list[str], list[str | None]]:
        entry = self.data["inputs"].get(task_id) or {"sources": [], "wants": []}
        return entry["sources"], entry["wants"]

    def outputs(self, task_id: str, program: str):
        return self.data["outputs"].get(program_key(task_id, program))

    def reviewer(self, task_id: str, program: str) -> float | None:
        return self.data["reviewer"].get(program_key(task_id, program))


# The product's own probe test (select.PROBE_TEST), run once as a plain script in the sandbox: the
# warm worker's pytest session per candidate costs ~5 s a program on this shared 2-core machine,
# this ~10x less (the same one-shot sandbox.run bench/tasks.py judges samples with).
PROBE_SCRIPT = """\
import sys
sys.path.insert(0, "{workdir}")
import test_budgetpass_probe as probe
message = ""
try:
    probe.test_budgetpass_probe()
except BaseException as exc:  # pytest.fail carries the outputs
    message = str(getattr(exc, "msg", exc))
open(sys.argv[1], "w").write(message)
"""


def _probe_one(program: str, probe_test: str, info, limits) -> list[str] | None:
    from budgetpass.verify import sandbox

    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "HOME": sandbox.SANDBOX_OUTDIR, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="budgetpass-probe-") as scratch:
        work, out = Path(scratch) / "work", Path(scratch) / "out"
        work.mkdir()
        out.mkdir()
        (work / "solution.py").write_text(program, encoding="utf-8")
        (work / "test_budgetpass_probe.py").write_text(probe_test, encoding="utf-8")
        (work / "run_probe.py").write_text(PROBE_SCRIPT.format(workdir=sandbox.SANDBOX_WORKDIR))
        sandbox.run([sys.executable, "-I", f"{sandbox.SANDBOX_WORKDIR}/run_probe.py",
                     f"{sandbox.SANDBOX_OUTDIR}/probe.txt"], work, out, info, limits, env)
        try:
            message = (out / "probe.txt").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    marker = message.find("BUDGETPASS-PROBE ")
    if marker < 0:
        return None
    try:
        values = json.loads(message[marker + len("BUDGETPASS-PROBE "):])
    except ValueError:
        return None
    return values if isinstance(values, list) else None


def _fill(store: SignalStore, kind: str, tasks, compute, log) -> int:
    """store.data[kind][program key] = compute(task_id, prompt, entry, programs)[program] for
    every program not yet there, saving as it goes (runs resume)."""
    done = 0
    for number, (task_id, prompt, entry, programs) in enumerate(tasks, 1):
        todo = sorted({p for p in programs if program_key(task_id, p) not in store.data[kind]})
        if not todo:
            continue
        start = time.monotonic()
        found = compute(task_id, prompt, entry, todo)
        for p in todo:
            store.data[kind][program_key(task_id, p)] = found.get(p)
        done += len(todo)
        log(f"{task_id}: {kind} of {len(todo)} programs ({time.monotonic() - start:.1f}s, "
            f"{number}/{len(tasks)})")
        if number % 10 == 0:
            store.save()
    store.save()
    return done


def probe(store: SignalStore, tasks: list[tuple[str, str, str, list[str]]], log=print) -> int:
    """Run every program not yet probed; tasks: (task_id, prompt, entry_point, programs)."""
    from budgetpass.verify import sandbox
    from budgetpass.verify.select import OUTPUT_CHARS, PROBE_TEST, ranking_inputs

    info = sandbox.probe("auto")
    limits = sandbox.Limits(wall_seconds=30, cpu_seconds=30, memory_bytes=1 << 30)
    for task_id, prompt, entry, _programs in tasks:
        inputs = ranking_inputs(prompt, entry)
        store.data["inputs"][task_id] = {"sources": [i.source for i in inputs],
                                         "wants": [i.want for i in inputs],
                                         "origins": [i.origin for i in inputs]}

    def compute(task_id, prompt, entry, todo):
        sources = store.data["inputs"][task_id]["sources"]
        if not sources:
            return {}
        probe_test = PROBE_TEST.format(module="solution", examples=sources, chars=OUTPUT_CHARS)
        # each program alone in its sandbox, no hidden tests in reach
        return {p: _probe_one(p, probe_test, info, limits) for p in todo}

    return _fill(store, "outputs", tasks, compute, log)


def review(store: SignalStore, tasks: list[tuple[str, str, str, list[str]]], model_name: str,
           log=print) -> int:
    """Reviewer scores (mean log p(docstring | code)) for every program not yet scored."""
    from budgetpass.generation import models
    from budgetpass.generation.backends import open_llamacpp
    from budgetpass.verify.select import RankInput, reviewer_scores

    loaded = []

    def compute(task_id, prompt, entry, todo):
        if not loaded:
            loaded.append(open_llamacpp(models.resolve(model_name).path))
        scores = reviewer_scores(loaded[0], [RankInput(i, p, 0.0, len(p))
                                             for i, p in enumerate(todo)], entry)
        return {p: scores.get(i) for i, p in enumerate(todo)}

    return _fill(store, "reviewer", tasks, compute, log)


def main(argv: list[str] | None = None) -> int:
    """``python -m budgetpass.bench.signals {ranking,reallocation} [--probe] [--review]``."""
    import argparse

    parser = argparse.ArgumentParser(description="store the no-test evidence of bench samples")
    parser.add_argument("bench", choices=("ranking", "reallocation"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--shard", default="0/1", help="I/N: every N-th task from the I-th")
    parser.add_argument("--probe", action="store_true", help="run programs on the probe inputs")
    parser.add_argument("--review", action="store_true", help="reviewer scores (loads the model)")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="the reviewer model")
    parser.add_argument("--cache", type=Path, default=None, help="the reallocation cache")
    parser.add_argument("--roles", default="small,large", help="reallocation: whose samples")
    parser.add_argument("--store", type=Path, default=SIGNALS,
                        help="the evidence file (runs in parallel need their own; merge after)")
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="evidence files to merge into --store")
    args = parser.parse_args(argv)
    if args.bench == "ranking":
        from .ranking import programs

        tasks = programs(args.limit)
    else:
        from .reallocation import ReallocationConfig, Cache, Runner, default_cache, select_tasks

        config = ReallocationConfig(limit=args.limit)
        runner = Runner(config, Cache(args.cache or default_cache()), rescore_only=True,
                        recorded=RESULTS / "reallocation.json")
        tasks = []
        for task in select_tasks(config)[0]:
            record = runner.run_task(task)
            found = [s.program for role in args.roles.split(",")
                     for s in record.by_role[role].sampled]
            tasks.append((task.task_id, task.prompt, task.entry_point, found))
    shard, shards = map(int, args.shard.split("/"))
    tasks = tasks[shard::shards]
    store = SignalStore(args.store)
    for other in args.merge:
        for kind, values in SignalStore(other).data.items():
            store.data[kind].update(values)
        store.save()
    if args.probe:
        probe(store, tasks)
    if args.review:
        review(store, tasks, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
