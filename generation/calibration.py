"""How fast each model runs on this machine and backend, measured once and cached on disk.

The ``time`` budget needs it: "k small-model candidates in the wall time of N reference calls" is
a property of the machine (a 2-core CPU decodes 8 sequences per step for ~4x the cost of one, a GPU
for ~1x), not of parameter counts. ``budgetpass calibrate`` measures prompt evaluation (prefill)
tokens/s and the time of one decode step with k = 1, 4, 8, 16 sequences.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from . import models
from .types import SamplingParams

CALIBRATION_KS = (1, 4, 8, 16)
_CODE = '''def merge_intervals(intervals):
    """Merge overlapping [start, end] intervals and return them sorted."""
    result = []
    for start, end in sorted(intervals):
        if result and start <= result[-1][1]:
            result[-1][1] = max(result[-1][1], end)
        else:
            result.append([start, end])
    return result

'''


@dataclass(frozen=True)
class ModelSpeed:
    model: str
    sha256: str
    backend: str
    threads: int
    prefill_tokens_per_second: float
    decode_step_seconds: dict[int, float]  # sequences decoded together -> seconds per step
    measured_at: str
    machine: str

    def step_seconds(self, k: int) -> float:
        """Seconds per decode step with ``k`` sequences: piecewise linear between the measured
        points, extended with the last segment's slope beyond them."""
        points = sorted(self.decode_step_seconds.items())
        if k <= points[0][0] or len(points) == 1:
            return points[0][1] * (k / points[0][0] if len(points) == 1 else 1.0)
        for (k0, s0), (k1, s1) in itertools.pairwise(points):
            if k <= k1:
                return s0 + (s1 - s0) * (k - k0) / (k1 - k0)
        (k0, s0), (k1, s1) = points[-2], points[-1]
        return s1 + (s1 - s0) * (k - k1) / (k1 - k0)

    def seconds(self, prompt_tokens: int, new_tokens: int, k: int) -> float:
        """Wall time of one request: the prompt once, then ``new_tokens`` steps of k sequences."""
        return prompt_tokens / self.prefill_tokens_per_second + new_tokens * self.step_seconds(k)

    def to_json(self) -> dict:
        data = asdict(self)
        data["decode_step_seconds"] = {str(k): v for k, v in self.decode_step_seconds.items()}
        return data

    @classmethod
    def from_json(cls, data: dict) -> ModelSpeed:
        steps = {int(k): float(v) for k, v in data["decode_step_seconds"].items()}
        return cls(**{**data, "decode_step_seconds": steps})


def calibration_file() -> Path:
    return models.cache_dir().parent / "calibration.json"


def cpu_model_name() -> str:
    """The CPU's marketing name where Linux tells it, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    return f"{cpu_model_name()} x{os.cpu_count()}"


def _key(sha256: str, backend: str, threads: int) -> str:
    return f"{sha256}:{backend}:{threads}:{machine_id()}"


def _load_all() -> dict:
    try:
        return json.loads(calibration_file().read_text())
    except (OSError, ValueError):
        return {}


def lookup(sha256: str, backend: str = "llama.cpp", threads: int | None = None) -> ModelSpeed | None:
    entry = _load_all().get(_key(sha256, backend, threads or os.cpu_count() or 1))
    try:
        return ModelSpeed.from_json(entry) if entry else None
    except (KeyError, TypeError, ValueError):
        return None  # an entry from another version: calibrate again


def lookup_model(name_or_path: str, backend: str = "llama.cpp",
                 threads: int | None = None) -> ModelSpeed | None:
    """The cached speed of a model given by name or path; None if it is not calibrated (or not a
    model this machine has, e.g. a bare parameter count)."""
    try:
        resolved = models.resolve(name_or_path)
    except models.ModelError:
        return None
    return lookup(resolved.sha256, backend, threads)


def save(speed: ModelSpeed) -> Path:
    data = _load_all()
    data[_key(speed.sha256, speed.backend, speed.threads)] = speed.to_json()
    path = calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def calibration_prompt(model, tokens: int) -> str:
    text = _CODE
    while len(model.tokenize(text)) < tokens:
        text += _CODE.replace("merge_intervals", f"merge_intervals_{len(text)}")
    return text


def calibrate(model, name: str, sha256: str, ks: tuple[int, ...] = CALIBRATION_KS,
              prompt_tokens: int = 256, new_tokens: int = 32, reps: int = 2) -> ModelSpeed:
    """Measure a loaded ``LlamaCppModel`` (median of ``reps``; the prompt cache is reset, so the
    prompt is evaluated in full every time)."""
    prompt = calibration_prompt(model, prompt_tokens)
    model.generate(prompt, max(ks), SamplingParams(max_tokens=2))  # warm-up, sizes the context
    prefill = []
    for _ in range(reps):
        model.reset()
        result = model.generate(prompt, 1, SamplingParams(temperature=0, max_tokens=1))
        prefill.append(result.prompt_tokens / result.prompt_seconds)
    steps = {}
    params = SamplingParams(temperature=0.8, max_tokens=new_tokens, ignore_eos=True)
    for k in ks:
        samples = []
        for _ in range(reps):
            model.reset()
            result = model.generate(prompt, k, params)
            samples.append((result.seconds - result.prompt_seconds) / max(1, new_tokens - 1))
        steps[k] = sorted(samples)[len(samples) // 2]
    return ModelSpeed(
        model=name,
        sha256=sha256,
        backend=getattr(model, "name", "llama.cpp"),
        threads=model.n_threads,
        prefill_tokens_per_second=sorted(prefill)[len(prefill) // 2],
        decode_step_seconds=steps,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=machine_id(),
    )


def endpoint_id(url: str, served_model: str) -> str:
    """What a remote calibration is filed under (in place of a GGUF's sha256)."""
    return f"{url.rstrip('/')}#{served_model}"


def calibrate_endpoint(backend, name: str, ks: tuple[int, ...] = CALIBRATION_KS,
                       prompt_tokens: int = 256, new_tokens: int = 32,
                       reps: int = 2) -> ModelSpeed:
    """Measure a model behind an OpenAI-compatible server (``OpenAICompatibleBackend``): the
    team's vLLM on GPUs batches k candidates for little more than one, which is what a time
    budget has to know. Timed from here, so network latency counts, as it does for the editor.

    Each request starts with a fresh line so that the server's prefix cache cannot serve its
    prompt; k candidates are one request (``n``; servers that ignore n are timed as they are).
    """
    served = backend.served_model(name)
    per_copy = backend.prompt_tokens(_CODE)  # the served model's own tokenizer
    copies = max(1, round(prompt_tokens / max(1, per_copy)))
    base = _CODE * copies
    tokens = per_copy * copies  # (plus a few for the line that makes each prompt fresh)
    runs = itertools.count()

    def fresh() -> str:
        return f"# calibration run {next(runs)} {time.time_ns()}\n" + base

    backend.generate(fresh(), max(ks), SamplingParams(max_tokens=2))  # warm-up
    prefill = []
    for _ in range(reps):
        result = backend.generate(fresh(), 1, SamplingParams(temperature=0, max_tokens=1))
        prefill.append(tokens / max(result.prompt_seconds, 1e-6))
    steps = {}
    params = SamplingParams(temperature=0.8, max_tokens=new_tokens, ignore_eos=True)
    for k in ks:
        samples = []
        for _ in range(reps):
            result = backend.generate(fresh(), k, params)
            decoded = max(c.token_count for c in result.completions)
            samples.append((result.seconds - result.prompt_seconds) / max(1, decoded - 1))
        steps[k] = sorted(samples)[len(samples) // 2]
    return ModelSpeed(
        model=name or served,
        sha256=endpoint_id(backend.url, served),
        backend="openai",
        threads=0,
        prefill_tokens_per_second=sorted(prefill)[len(prefill) // 2],
        decode_step_seconds=steps,
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=backend.url,
    )


def lookup_served(name: str, url: str | None = None) -> ModelSpeed | None:
    """A remote calibration of the model called ``name`` (its budget name, e.g.
    qwen2.5-coder-1.5b or 7B, or the id the server lists), at ``url`` if given, else at any
    endpoint: the reference model may be served elsewhere than the small one."""
    found = None
    for entry in _load_all().values():
        try:
            speed = ModelSpeed.from_json(entry)
        except (KeyError, TypeError, ValueError):
            continue
        where, _, served = speed.sha256.partition("#")
        if speed.backend != "openai" or name not in (speed.model, served):
            continue
        if url is not None and where != url.rstrip("/"):
            continue
        if found is None or speed.measured_at > found.measured_at:
            found = speed
    return found


def calibrate_models(names: list[str], threads: int | None = None, force: bool = False,
                     on_model: Callable[[str, str], None] | None = None) -> list[ModelSpeed]:
    """Calibrate each model (a name or path) unless its speed is cached; save the results."""
    from .backends import open_llamacpp

    speeds = []
    for name in names:
        resolved = models.resolve(name)
        cached = None if force else lookup(resolved.sha256, "llama.cpp", threads)
        if cached:
            if on_model:
                on_model(resolved.name, "cached")
            speeds.append(cached)
            continue
        if on_model:
            on_model(resolved.name, "measuring")
        speed = calibrate(open_llamacpp(resolved.path, threads), resolved.name, resolved.sha256)
        save(speed)
        speeds.append(speed)
    return speeds
