"""What the project index holds at one moment: an entry per test file and conftest.py (its
summary, and the mtime and size it was read at), published as an immutable snapshot that lookups
read without waiting for an update."""

from __future__ import annotations

from dataclasses import dataclass, field

from .discovery import FileSummary, is_test_file

# A file changed within this long before it was read may change again with the same mtime and
# size (coarse file-system clocks): it is read again at the next check until it is older.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class FileEntry:
    mtime_ns: int
    size: int
    read_ns: int  # wall clock just before the file was read
    summary: FileSummary | None  # None: not valid Python (pytest reports it if it is run)

    def current(self, mtime_ns: int, size: int) -> bool:
        return (self.mtime_ns, self.size) == (mtime_ns, size) and \
            self.read_ns - self.mtime_ns > RACY_NS


@dataclass
class IndexSnapshot:
    """Immutable once published (the conftest chains are a cache of a pure function of it)."""

    entries: dict[str, FileEntry]  # relative path -> entry: test files and conftest.py files
    order: tuple[str, ...]  # test files in the order a sorted os.walk yields them
    chains: dict[str, list[FileSummary]] = field(default_factory=dict)
    used: frozenset[str] | None = None  # every name any test file or conftest.py uses or imports

    def may_name(self, short: str) -> bool:
        """False when no indexed file can name ``short`` (``select_in_file`` is then empty for
        every file): a 50k-line module's thousands of functions skip the per-file scan."""
        if self.used is None:
            self.used = frozenset().union(*(e.summary.names | e.summary.imported
                                            for e in self.entries.values()
                                            if e.summary is not None))
        return short in self.used

    def conftests(self, rel: str) -> list[FileSummary]:
        """The conftest.py summaries that apply to test file ``rel``, from the root down."""
        folder = rel.rpartition("/")[0]
        chain = self.chains.get(folder)
        if chain is None:
            chain, current = [], folder
            while True:
                entry = self.entries.get(f"{current}/conftest.py" if current else "conftest.py")
                if entry is not None and entry.summary is not None:
                    chain.append(entry.summary)
                if not current:
                    break
                current = current.rpartition("/")[0]
            chain.reverse()
            self.chains[folder] = chain
        return chain


def walk_key(rel: str) -> tuple:
    """Sorts paths as ``os.walk`` with sorted folders and files yields them: a folder's files
    before its subfolders."""
    *folders, name = rel.split("/")
    return tuple((1, f) for f in folders) + ((0, name),)


def indexed(name: str) -> bool:
    return is_test_file(name) or name == "conftest.py"
