"""The project index: built once, kept current from change events and mtimes, the same answer as
a full scan, safe to ask while it updates."""

import json
import os
import threading
import time
from pathlib import Path

import pytest
from budgetpass.verify import index as index_module
from budgetpass.verify.discovery import find_tests
from budgetpass.verify.index import ProjectIndex, project_index
from budgetpass.verify.index_snapshot import RACY_NS


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETPASS_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "shop"
    _write(root, "shop/__init__.py", "")
    _write(root, "shop/prices.py", "def total(xs):\n    return sum(xs)\n\n"
           "def tax(x):\n    return x / 5\n")
    _write(root, "conftest.py", "import pytest\nfrom shop.prices import total\n\n"
           "@pytest.fixture\ndef basket():\n    return total([1, 2])\n")
    _write(root, "tests/test_prices.py", "from shop.prices import tax, total\n\n"
           "def test_total():\n    assert total([1]) == 1\n\n"
           "def test_tax():\n    assert tax(5) == 1\n\n"
           "def test_basket(basket):\n    assert basket == 3\n")
    _write(root, "tests/deep/test_more.py", "from shop.prices import tax\n\n"
           "def test_more_tax():\n    assert tax(10) == 2\n")
    return root


def _same_as_full_scan(index: ProjectIndex, names=("total", "tax", "Cart.add", "missing")):
    fresh = ProjectIndex(index.root, use_cache=False)
    for name in names:
        assert index.find_tests(name) == fresh.find_tests(name), name


def test_build_in_the_background_then_lookup(project):
    index = ProjectIndex(project).start()
    assert index.wait(30)
    assert index.find_tests("total").node_ids == (
        "tests/test_prices.py::test_total", "tests/test_prices.py::test_basket")
    assert index.find_tests("tax").node_ids == ("tests/test_prices.py::test_tax",
                                                "tests/deep/test_more.py::test_more_tax")
    assert index.test_imports(("tests/test_prices.py::test_tax",)) == {"shop", "pytest"}
    _same_as_full_scan(index)


def test_watched_index_follows_change_events_and_reads_only_what_changed(project):
    index = ProjectIndex(project, use_cache=False)
    index.refresh()
    index.watched = True
    parsed = index.parsed
    test_file = project / "tests/test_prices.py"
    test_file.write_text(test_file.read_text().replace("assert tax(5) == 1", "assert 1")
                         .replace("import tax, total", "import total"))
    assert "tests/test_prices.py::test_tax" in index.find_tests("tax").node_ids  # not told yet
    index.changed([test_file])
    assert index.parsed == parsed + 1
    assert index.find_tests("tax").node_ids == ("tests/deep/test_more.py::test_more_tax",)
    _same_as_full_scan(index)


def test_new_and_deleted_test_files_and_ignored_paths(project):
    index = ProjectIndex(project, use_cache=False)
    index.refresh()
    index.watched = True
    new = _write(project, "tests/test_new.py", "from shop.prices import total\n\n"
                 "def test_new():\n    assert total([])== 0\n")
    hidden = _write(project, ".venv/lib/test_x.py", "def test_total():\n    total()\n")
    index.changed([new, hidden, project / "shop/prices.py", Path("/elsewhere/test_y.py")])
    assert "tests/test_new.py::test_new" in index.find_tests("total").node_ids
    assert not any(".venv" in n for n in index.find_tests("total").node_ids)
    (project / "tests/deep/test_more.py").unlink()
    index.changed([project / "tests/deep/test_more.py"])
    assert index.find_tests("tax").node_ids == ("tests/test_prices.py::test_tax",)
    _same_as_full_scan(index)
    # A folder deleted as a whole: the event names the folder; the index walks again.
    (project / "tests/test_new.py").unlink()
    (project / "tests/test_prices.py").unlink()
    os.rename(project / "tests", project / "gone")
    index.changed([project / "tests"])
    assert index.find_tests("total").node_ids == ()
    _same_as_full_scan(index)


def test_conftest_fixture_change_changes_the_selection(project):
    index = ProjectIndex(project, use_cache=False)
    assert "tests/test_prices.py::test_basket" in index.find_tests("total").node_ids
    _write(project, "conftest.py", "import pytest\nfrom shop.prices import tax\n\n"
           "@pytest.fixture\ndef basket():\n    return tax(15)\n")
    # Not watched: the next lookup's stat walk sees the new mtime (or the racy window) itself.
    assert index.find_tests("total").node_ids == ("tests/test_prices.py::test_total",)
    assert "tests/test_prices.py::test_basket" in index.find_tests("tax").node_ids
    _same_as_full_scan(index)


def test_unwatched_lookups_see_same_size_rewrites_within_the_clock_tick(project):
    index = ProjectIndex(project, use_cache=False)
    path = project / "tests/deep/test_more.py"
    assert index.find_tests("tax").node_ids[-1] == "tests/deep/test_more.py::test_more_tax"
    stat = path.stat()
    path.write_text(path.read_text().replace("tax(10)", "abs(1)"))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
    assert "tests/deep/test_more.py::test_more_tax" not in index.find_tests("tax").node_ids


def test_disk_cache_spares_parsing_and_stays_out_of_the_project(project, monkeypatch):
    monkeypatch.setattr(index_module, "CACHE_WORTH_S", 0.0)
    first = ProjectIndex(project)
    expected = first.find_tests("total")
    cache = index_module.cache_path(project.absolute())
    assert cache.is_file() and project not in cache.parents
    assert json.loads(cache.read_text())["key"]["root"] == str(project.absolute())
    # Old enough not to be racy, as they would be on a real project.
    data = json.loads(cache.read_text())
    for entry in data["files"].values():
        entry[2] += 10 * RACY_NS
    cache.write_text(json.dumps(data))
    second = ProjectIndex(project)
    assert second.find_tests("total") == expected
    assert second.parsed == 0
    _write(project, "tests/test_prices.py", "def test_nothing():\n    pass\n")
    third = ProjectIndex(project)
    assert third.find_tests("total").node_ids == ()
    assert third.parsed == 1
    cache.write_text("{not json")
    assert ProjectIndex(project).find_tests("tax").node_ids  # a damaged cache is ignored


def test_lookups_during_updates_see_a_whole_answer(project):
    index = ProjectIndex(project, use_cache=False)
    index.refresh()
    index.watched = True
    before = index.find_tests("total").node_ids
    test_file = project / "tests/test_prices.py"
    original = test_file.read_text()
    extended = original + "\n\ndef test_total_again():\n    assert total([2]) == 2\n"
    after = before[:2] + ("tests/test_prices.py::test_total_again",) + before[2:]
    stop = threading.Event()
    errors = []

    def update():
        try:
            for k in range(60):
                test_file.write_text(extended if k % 2 == 0 else original)
                index.changed([test_file])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()

    seen = set()
    thread = threading.Thread(target=update)
    thread.start()
    while not stop.is_set():
        seen.add(index.find_tests("total").node_ids)
        time.sleep(0)
    thread.join()
    assert not errors
    assert seen <= {before, after} and seen


def test_find_tests_uses_one_index_per_project(project):
    assert project_index(project) is project_index(project)
    first = find_tests(project, "total").node_ids
    _write(project, "tests/test_late.py", "from shop.prices import total\n\n"
           "def test_late():\n    assert total([3]) == 3\n")
    assert find_tests(project, "total").node_ids == ("tests/test_late.py::test_late",) + first


def test_a_lookup_while_the_background_build_is_starting_waits_for_it(project, monkeypatch):
    index = ProjectIndex(project, use_cache=False)
    answers, errors = [], []
    plain_thread = threading.Thread

    def ask():
        try:
            answers.append(index.find_tests("tax").node_ids)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    class SlowToStart(plain_thread):
        def start(self):  # a lookup arrives between the build thread's creation and its start
            asker = plain_thread(target=ask)
            asker.start()
            time.sleep(0.1)
            super().start()
            monkeypatch.setattr(index_module.threading, "Thread", plain_thread)
            self.asker = asker

    monkeypatch.setattr(index_module.threading, "Thread", SlowToStart)
    index.start()
    index._building.asker.join(30)
    assert not errors and answers == [ProjectIndex(project, use_cache=False).find_tests("tax")
                                      .node_ids]


def test_source_version_follows_any_python_file_from_walks_or_events(project):
    # A warm test worker's copy of the project is stale when any Python file changes, tests or not.
    index = ProjectIndex(project, use_cache=False)
    first = index.source_version()
    assert index.source_version() == first  # nothing changed
    source = project / "shop/prices.py"
    source.write_text(source.read_text() + "\n\ndef more():\n    return 1\n")
    second = index.source_version()
    assert second != first
    (project / "README.txt").write_text("not Python")
    assert index.source_version() == second
    index.watched = True  # the editor reports changes: no walk, the event is what counts
    _write(project, "shop/extra.py", "X = 1\n")
    assert index.source_version() == second
    index.changed([project / "shop/extra.py"])
    third = index.source_version()
    assert third != second
    # An index made again never repeats a version an old one gave (a cached worker's stamp).
    assert ProjectIndex(project, use_cache=False).source_version() not in (first, second, third)


def test_watch_marks_the_indexes_of_the_watched_folders(project, tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "_WATCHED", [])
    inside = project_index(project)
    index_module.watch([project])
    elsewhere = project_index(tmp_path / "elsewhere")
    assert inside.watched and not elsewhere.watched
    index_module.watch([])
    assert not inside.watched
