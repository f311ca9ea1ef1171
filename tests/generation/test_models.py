import hashlib
import json
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from budgetpass.generation import models


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETPASS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def _fake_model(tmp_path, monkeypatch, chunks, sha=None):
    """A registered model whose chunk 'packages' are plain folders on sys.path."""
    site = tmp_path / "site"
    packages = []
    for i, data in enumerate(chunks, 1):
        folder = site / f"fakechunk_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder / f"part{i:02d}.bin").write_bytes(data)
        packages.append(models.ChunkPackage(f"fakechunk-part{i}", "1.0"))
    monkeypatch.syspath_prepend(str(site))
    joined = b"".join(chunks)
    entry = models.RegisteredModel(
        name="fake-model", description="test", parameters=1000, size=len(joined),
        sha256=sha or hashlib.sha256(joined).hexdigest(), packages=tuple(packages),
        member_pattern=r"data/part\d+\.bin$")
    monkeypatch.setitem(models.REGISTRY, "fake-model", entry)
    return entry


def test_fetch_joins_chunks_in_order_and_verifies(tmp_path, monkeypatch, cache):
    entry = _fake_model(tmp_path, monkeypatch, [b"A" * 100, b"B" * 50, b"C" * 7])
    path = models.fetch("fake-model")
    assert path == cache / "fake-model.gguf"
    assert path.read_bytes() == b"A" * 100 + b"B" * 50 + b"C" * 7
    resolved = models.resolve("fake-model")
    assert resolved.sha256 == entry.sha256 and resolved.source == "cache"


def test_corrupt_chunk_is_an_error_and_nothing_is_kept(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, [b"A" * 100, b"B" * 50], sha="0" * 64)
    with pytest.raises(models.ModelError, match="corrupt.*nothing was kept"):
        models.fetch("fake-model")
    assert not list(cache.glob("*.gguf")) and not list(cache.glob(".fetch-*"))


def test_tampered_cache_file_is_removed(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, [b"A" * 100])
    path = models.fetch("fake-model")
    path.write_bytes(b"X" * 100)
    with pytest.raises(models.ModelError, match="expected"):
        models._resolve_registered(models.REGISTRY["fake-model"])
    assert not path.exists()


def test_no_disk_space_is_a_clear_error(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, [b"A" * 100])
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(models.shutil, "disk_usage", lambda p: usage(10, 10, 0))
    with pytest.raises(models.ModelError, match="not enough disk space.*BUDGETPASS_CACHE"):
        models.fetch("fake-model")
    assert not list(cache.glob("*.gguf"))


def test_unknown_model_says_what_would_work(cache):
    with pytest.raises(models.ModelError, match="qwen2.5-coder-0.5b.*path to a .gguf"):
        models.resolve("no-such-model")


def test_missing_registered_model_says_how_to_fetch(tmp_path, monkeypatch, cache):
    _fake_model(tmp_path, monkeypatch, [b"A"])
    monkeypatch.setattr(models, "_installed_chunk_dirs", lambda m: None)
    with pytest.raises(models.ModelError, match="budgetpass models fetch fake-model"):
        models.resolve("fake-model")


@pytest.mark.slow
def test_local_path_and_hf_cache_resolve(tmp_path, monkeypatch, smol_path):
    local = models.resolve(str(smol_path))
    assert local.source == "path" and local.sha256 == models.REGISTRY["smollm2-135m"].sha256
    assert 100e6 < local.parameters < 200e6
    snap = tmp_path / "hf" / "models--Org--Smol-GGUF" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "smol.Q4_1.gguf").symlink_to(smol_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    hf = models.resolve("Org/Smol-GGUF")
    assert hf.source == "huggingface" and hf.path == smol_path.resolve()


@pytest.mark.slow
def test_cli_models_json_for_the_default_model(qwen_path):
    out = subprocess.run([sys.executable, "-m", "budgetpass.server.cli", "models",
                          "qwen2.5-coder-0.5b", "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["path"] == str(qwen_path)
    assert data["sha256"] == models.REGISTRY["qwen2.5-coder-0.5b"].sha256
    assert data["size"] == 491_400_064 and data["parameters"] == 494_032_768
    assert Path(data["path"]).stat().st_size == data["size"]


@pytest.mark.slow
def test_a_registered_model_by_its_path_counts_as_by_its_name(qwen_path, smol_path):
    """The budget's parameter count must not change with how the model is named (the GGUF's
    tensors count the 0.5B's tied output matrix twice)."""
    assert models.gguf_parameter_count(qwen_path) != 494_032_768
    assert models.resolve(str(qwen_path)).parameters == 494_032_768
    assert models.resolve(str(smol_path)).parameters == models.resolve("smollm2-135m").parameters
