"""Typing through inline proposals: what is reused, and every change that must not reuse them."""

from pathlib import Path

from budgetpass.app.complete import Completions, Proposal, RecentCompletions
from budgetpass.app.config import build

PATH = Path("/project/mod.py")
TEXT = "def area(w, h):\n    return \n\nprint(area(2, 3))\n"
AT = TEXT.index("return ") + len("return ")
CONFIG = build({})


def proposals(*texts: str) -> Completions:
    items = [Proposal(t, AT, AT, -0.1 * i, 0, None) for i, t in enumerate(texts)]
    return Completions(items, report=None, notes=["a note"])


def typed(text: str) -> tuple[str, int]:
    return TEXT[:AT] + text + TEXT[AT:], AT + len(text)


def remembered(*texts: str) -> RecentCompletions:
    recent = RecentCompletions()
    recent.remember(PATH, TEXT, AT, CONFIG, proposals(*texts))
    return recent


def test_asked_again_at_the_same_spot_gets_the_same_proposals():
    again = remembered("w * h", "h * w").reuse(PATH, TEXT, AT, CONFIG)
    assert [p.text for p in again.items] == ["w * h", "h * w"]
    assert again.typed_through == "" and again.notes == ["a note"]


def test_typing_through_keeps_the_matching_proposals_minus_what_was_typed():
    recent = remembered("w * h", "h * w", "w*h")
    text, offset = typed("w ")
    through = recent.reuse(PATH, text, offset, CONFIG)
    assert [(p.text, p.start, p.end) for p in through.items] == [("* h", offset, offset)]
    assert through.items[0].mean_logprob == 0.0 and through.typed_through == "w "
    # Still from the first answer: typing on reuses it again.
    text, offset = typed("w *")
    assert [p.text for p in recent.reuse(PATH, text, offset, CONFIG).items] == [" h"]


def test_no_reuse_when_nothing_continues_or_all_was_typed():
    recent = remembered("w * h", "h * w")
    assert recent.reuse(PATH, *typed("x"), CONFIG) is None
    assert recent.reuse(PATH, *typed("w * h"), CONFIG) is None


def test_no_reuse_after_any_other_change_another_file_or_setting():
    recent = remembered("w * h")
    text, offset = typed("w")
    assert recent.reuse(PATH, text.replace("area", "size"), offset, CONFIG) is None
    assert recent.reuse(PATH, text.replace("2, 3", "2, 4"), offset, CONFIG) is None
    assert recent.reuse(PATH, text, offset - 1, CONFIG) is None  # cursor moved back
    assert recent.reuse(PATH, TEXT[:AT - 1] + TEXT[AT:], AT - 1, CONFIG) is None  # deleted
    assert recent.reuse(Path("/project/other.py"), text, offset, CONFIG) is None
    assert recent.reuse(PATH, text, offset, build({"budget.samples": 7})) is None
    recent.forget(PATH)
    assert recent.reuse(PATH, text, offset, CONFIG) is None


def test_an_answer_without_items_forgets_the_last_one():
    recent = remembered("w * h")
    recent.remember(PATH, TEXT, AT, CONFIG, proposals())
    assert recent.reuse(PATH, TEXT, AT, CONFIG) is None
