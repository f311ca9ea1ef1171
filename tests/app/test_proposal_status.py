"""What an inline item says about its tests, and the order items arrive in: passing, then
partial (more tests passed first), then untested."""

from budgetpass.app.complete import Proposal, _tested_first


def item(tests: int, passed: int | None, text: str = "") -> Proposal:
    return Proposal(text, 0, 0, -0.5, tests, passed)


def test_labels_say_how_many_tests_passed():
    assert (item(3, 3).status, item(3, 3).label) == ("passed", "✓ 3/3 tests")
    assert (item(3, 1).status, item(3, 1).label) == ("failed", "✗ 1/3 tests")
    assert (item(3, None).status, item(3, None).label) == ("untested", "untested")
    assert item(0, None).status == "untested"


def test_tested_ones_come_first():
    items = [item(3, None, "u"), item(3, 0, "zero"), item(3, 3, "pass"), item(3, 2, "two"),
             item(3, None, "u2")]
    assert [i.text for i in sorted(items, key=_tested_first)] == ["pass", "two", "zero", "u", "u2"]
