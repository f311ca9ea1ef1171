"""The project index: every test file and conftest.py read once, then only when it changes.

Selecting a function's tests used to re-parse every test file per call (14-16 s per call on sympy's
604 test files). The index keeps a summary per file (``discovery.FileSummary``: the names each test
and fixture uses, what the file imports) and answers ``find_tests`` from the summaries in
milliseconds, with the same answer as a full scan.

It is kept current two ways: ``changed(paths)`` from the editor's file-change notifications (the
language server: ``watch`` names the folders they cover, ``files_changed`` routes them), and a stat
walk comparing mtimes and sizes (the CLI, and a fallback): a stat is far cheaper than a parse. The
same two ways give ``source_version``, which changes when any Python file of the project does (a
warm test worker's copy of the project is stale then). Summaries are also kept on disk under the cache folder (never in the
project), keyed by the project's path, so a CLI run on a big project parses only what changed.

Thread-safe: updates are serialised; a lookup reads an immutable snapshot, so it never waits for
an update and never sees half of one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

from budgetpass.generation.locate import FunctionSite, functions

from .discovery import (
    SKIP_DIRS,
    FileSummary,
    SelectedTests,
    doctest_node_id,
    is_test_file,
    read_summary,
    select_in_file,
)
from .index_snapshot import FileEntry, IndexSnapshot, indexed, walk_key

log = logging.getLogger("budgetpass.index")

CACHE_VERSION = 1
RESCAN_WATCHED_S = 60.0  # with change notifications, still walk now and then (missed events)
CACHE_WORTH_S = 0.2  # parsing this long is worth a cache file; tiny projects get none
MAX_INDEXES = 8
MAX_FUNCTION_FILES = 64
# Source versions are unique in the process: an index dropped and made again never repeats one.
_VERSIONS = itertools.count(1)


def cache_path(root: Path) -> Path:
    from budgetpass.generation import models

    name = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return models.cache_dir().parent / "index" / f"{name}.json"


class ProjectIndex:
    def __init__(self, root: Path, use_cache: bool = True):
        self.root = Path(root).absolute()
        self.watched = False  # the editor reports changes (``changed``): lookups skip the walk
        self.parsed = 0  # files parsed so far (the bench and the tests read it)
        self._version = 0  # a new number when a Python file of the project changes
        self._python_stamp: int | None = None  # every .py file's path, mtime and size, hashed
        self._snapshot: IndexSnapshot | None = None
        self._update = threading.Lock()
        self._building: threading.Thread | None = None
        self._last_walk = 0.0
        self._functions: OrderedDict[str, tuple[int, int, list[FunctionSite]]] = OrderedDict()
        self._functions_lock = threading.Lock()
        self._cache = cache_path(self.root) if use_cache else None
        if self._cache is not None and self.root in self._cache.parents:
            self._cache = None  # never write into the user's project
        self._save_timer: threading.Timer | None = None

    # --- building and keeping current ---------------------------------------------------------

    def start(self) -> ProjectIndex:
        """Build in a background thread (e.g. when the server starts); ``wait`` for it."""
        with self._update:
            if self._building is None and self._snapshot is None:
                thread = threading.Thread(target=self._build, name="budgetpass-index",
                                          daemon=True)
                thread.start()  # before it is published: ``wait`` may join it at once
                self._building = thread
        return self

    def _build(self) -> None:
        try:
            self.refresh()
        except Exception:  # a lookup builds again and raises to its caller
            log.exception("building the index of %s failed", self.root)

    def wait(self, timeout: float | None = None) -> bool:
        """True once a first build is done."""
        thread = self._building
        if thread is not None:
            thread.join(timeout)
        return self._snapshot is not None

    def refresh(self) -> None:
        """Walk the project, read what is new or changed since the last walk (or the disk
        cache), forget what is gone."""
        with self._update:
            started = time.monotonic()
            old = self._snapshot.entries if self._snapshot is not None else self._load_cache()
            found, python_stamp = self._walk()
            if python_stamp != self._python_stamp:
                self._python_stamp = python_stamp
                self._version = next(_VERSIONS)
            entries, parsed = {}, 0
            for rel, (mtime_ns, size) in found.items():
                entry = old.get(rel)
                if entry is None or not entry.current(mtime_ns, size):
                    entry = self._read(rel)
                    parsed += 1
                entries[rel] = entry
            changed = parsed or entries.keys() != old.keys()
            if changed or self._snapshot is None:
                self._publish(entries)
            self._last_walk = time.monotonic()
            seconds = self._last_walk - started
            if changed:
                log.info("index of %s: %d files, %d read, %.2f s", self.root, len(entries), parsed,
                         seconds)
                if self._cache is not None and (seconds >= CACHE_WORTH_S or self._cache.exists()):
                    self._save(entries)

    def changed(self, paths) -> None:
        """The editor says these files (or folders) changed, were created or were deleted."""
        if self._snapshot is None:
            self.wait()
        walk = False
        with self._update:
            if self._snapshot is None:
                return  # the coming build reads the files as they are
            entries = dict(self._snapshot.entries)
            touched = False
            for path in paths:
                rel = self._relative(Path(path))
                if rel is None:
                    continue
                full = self.root / rel
                self._version = next(_VERSIONS)  # a Python file, or a folder that may hold some
                if not indexed(full.name):
                    # A folder created, renamed or deleted (its files are not named one by one).
                    walk = walk or not full.name.endswith(".py")
                    continue
                if full.is_file():
                    entries[rel] = self._read(rel)
                elif rel in entries:
                    del entries[rel]
                else:
                    continue
                touched = True
            if touched:
                self._publish(entries)
                self._schedule_save()
        if walk:
            self.refresh()

    def _relative(self, path: Path) -> str | None:
        path = path if path.is_absolute() else self.root / path
        for candidate, root in ((path, self.root), (path.resolve(), self.root.resolve())):
            try:
                parts = candidate.relative_to(root).parts
            except ValueError:
                continue
            if not parts or any(p in SKIP_DIRS or p.startswith(".") for p in parts):
                return None
            return "/".join(parts)
        return None

    def _walk(self) -> tuple[dict[str, tuple[int, int]], int]:
        """(the indexed files' mtimes and sizes, a hash of every Python file's)."""
        found = {}
        python = []
        root = str(self.root)
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.startswith(".")]
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # deleted during the walk, or a dangling link
                python.append((path, stat.st_mtime_ns, stat.st_size))
                if indexed(name):
                    rel = os.path.relpath(path, root).replace(os.sep, "/")
                    found[rel] = (stat.st_mtime_ns, stat.st_size)
        return found, hash(tuple(python))

    def _read(self, rel: str) -> FileEntry:
        path = self.root / rel
        read_ns = time.time_ns()
        try:
            stat = path.stat()
        except OSError:
            return FileEntry(0, -1, read_ns, None)
        self.parsed += 1
        return FileEntry(stat.st_mtime_ns, stat.st_size, read_ns, read_summary(path))

    def _publish(self, entries: dict[str, FileEntry]) -> None:
        order = tuple(sorted((rel for rel in entries if is_test_file(rel.rpartition("/")[2])),
                             key=walk_key))
        self._snapshot = IndexSnapshot(entries, order)

    def _current(self) -> IndexSnapshot:
        if self._snapshot is None:
            self.wait()
        if self._snapshot is None or not self.watched or \
                time.monotonic() - self._last_walk > RESCAN_WATCHED_S:
            self.refresh()
        return self._snapshot

    # --- the disk cache -----------------------------------------------------------------------

    def _cache_key(self) -> dict:
        return {"version": CACHE_VERSION, "python": list(sys.version_info[:2]),
                "root": str(self.root)}

    def _load_cache(self) -> dict[str, FileEntry]:
        if self._cache is None or not self._cache.is_file():
            return {}
        try:
            data = json.loads(self._cache.read_text(encoding="utf-8"))
            if data.get("key") != self._cache_key():
                return {}
            return {rel: FileEntry(mtime, size, read_ns,
                                FileSummary.from_json(summary) if summary is not None else None)
                    for rel, (mtime, size, read_ns, summary) in data["files"].items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the damaged index cache %s: %s", self._cache, exc)
            return {}

    def _save(self, entries: dict[str, FileEntry]) -> None:
        data = {"key": self._cache_key(),
                "files": {rel: [e.mtime_ns, e.size, e.read_ns,
                                e.summary.to_json() if e.summary is not None else None]
                          for rel, e in entries.items()}}
        try:
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            temp = self._cache.with_suffix(f".{os.getpid()}.tmp")
            temp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            temp.replace(self._cache)
        except OSError as exc:
            log.warning("cannot write the index cache %s: %s", self._cache, exc)

    def _schedule_save(self) -> None:
        if self._cache is None or not self._cache.exists() or (
                self._save_timer is not None and self._save_timer.is_alive()):
            return

        def save():
            snapshot = self._snapshot
            if snapshot is not None:
                self._save(snapshot.entries)

        self._save_timer = threading.Timer(5.0, save)
        self._save_timer.daemon = True
        self._save_timer.start()

    # --- questions ----------------------------------------------------------------------------

    def source_version(self) -> int:
        """A number that changes when any Python file of the project changes, is added or goes
        (from the editor's notifications when watched, else from a stat walk)."""
        self._current()
        return self._version

    def find_tests(self, function_name: str, target_file: Path | None = None) -> SelectedTests:
        """See ``discovery.find_tests``: the same answer, from the summaries."""
        return self.find_tests_of([function_name], target_file)[function_name]

    def find_tests_of(self, function_names, target_file: Path | None = None,
                      located: list[FunctionSite] | None = None) -> dict[str, SelectedTests]:
        """``find_tests`` for several functions of one file, after one freshness check;
        ``located``: the file's functions if the caller has them (an editor's buffer)."""
        snapshot = self._current()
        target_file = Path(target_file) if target_file is not None else None
        if located is None:
            located = self.functions(target_file) if target_file is not None else []
        sites: dict[str, FunctionSite] = {}
        for site in located:
            sites.setdefault(site.qualname, site)
        return {name: self._select(snapshot, name, target_file, sites.get(name))
                for name in function_names}

    def _select(self, snapshot: IndexSnapshot, function_name: str, target_file: Path | None,
                site: FunctionSite | None) -> SelectedTests:
        parts = function_name.split(".")
        short, owner = parts[-1], (parts[-2] if len(parts) > 1 else None)
        node_ids: list[str] = []
        files: list[str] = []
        for rel in snapshot.order if snapshot.may_name(short) else ():
            summary = snapshot.entries[rel].summary
            if summary is None:
                continue
            hits = select_in_file(rel, summary, snapshot.conftests(rel), short, owner)
            if hits:
                node_ids.extend(hits)
                files.append(rel)
        if target_file is not None:
            doctest_id = doctest_node_id(self.root, target_file, function_name, site)
            if doctest_id:
                node_ids.append(doctest_id)
                files.append(doctest_id.split("::")[0])
        return SelectedTests(tuple(node_ids), tuple(files))

    def test_imports(self, node_ids) -> set[str]:
        """See ``discovery.test_imports``."""
        snapshot = self._current()
        names: set[str] = set()
        for rel in {node_id.split("::")[0] for node_id in node_ids}:
            entry = snapshot.entries.get(rel)
            if entry is None or entry.summary is None:
                continue
            for summary in [entry.summary, *snapshot.conftests(rel)]:
                names |= summary.modules
        return names

    def functions(self, path: Path) -> list[FunctionSite]:
        """The functions of a file on disk, located once per version of it."""
        path = Path(path).absolute()
        try:
            stat = path.stat()
        except OSError:
            return []
        key = str(path)
        with self._functions_lock:
            known = self._functions.get(key)
            if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
                self._functions.move_to_end(key)
                return known[2]
        try:
            sites = functions(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return []
        with self._functions_lock:
            self._functions[key] = (stat.st_mtime_ns, stat.st_size, sites)
            while len(self._functions) > MAX_FUNCTION_FILES:
                self._functions.popitem(last=False)
        return sites


_INDEXES: OrderedDict[Path, ProjectIndex] = OrderedDict()
_INDEXES_LOCK = threading.Lock()
_WATCHED: list[Path] = []  # folders whose file changes the editor reports


def _is_watched(root: Path) -> bool:
    return any(folder == root or folder in root.parents for folder in _WATCHED)


def watch(folders) -> None:
    """The editor reports every change of a Python file under ``folders`` (``files_changed``):
    lookups in projects there trust those reports instead of walking the project each time."""
    with _INDEXES_LOCK:
        _WATCHED[:] = [Path(f).absolute() for f in folders]
        for root, index in _INDEXES.items():
            index.watched = _is_watched(root)


def files_changed(paths) -> None:
    """The editor's file-change notifications, for every open index."""
    paths = [Path(p) for p in paths]
    for index in open_indexes():
        index.changed(paths)


def project_index(root: Path) -> ProjectIndex:
    """The process's index of the project at ``root`` (made on first use, not yet built)."""
    root = Path(root).absolute()
    with _INDEXES_LOCK:
        index = _INDEXES.get(root)
        if index is None:
            index = _INDEXES[root] = ProjectIndex(root)
            index.watched = _is_watched(root)
            while len(_INDEXES) > MAX_INDEXES:
                _INDEXES.popitem(last=False)
        _INDEXES.move_to_end(root)
        return index


def open_indexes() -> list[ProjectIndex]:
    with _INDEXES_LOCK:
        return list(_INDEXES.values())
