"""Who works on which document: a newer inline request stops the older one; one job each."""

from budgetpass.server.work import WorkBoard


def test_a_new_inline_request_stops_the_previous_generation_of_the_same_document():
    board = WorkBoard()
    first_serial, first = board.start_inline("file:///a.py")
    _, other_doc = board.start_inline("file:///b.py")
    second_serial, second = board.start_inline("file:///a.py")
    assert first() and "superseded" in first.reason
    assert not second() and not other_doc()
    assert board.is_latest_inline("file:///a.py", second_serial)
    assert not board.is_latest_inline("file:///a.py", first_serial)


def test_one_job_per_document_and_close_stops_its_work():
    board = WorkBoard()
    job = board.start_job("file:///a.py")
    assert job is not None and board.start_job("file:///a.py") is None
    assert board.start_job("file:///b.py") is not None
    board.close("file:///a.py")
    assert job() and job.reason == "document closed"
    assert board.start_job("file:///a.py") is not None
