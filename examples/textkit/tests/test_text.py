from textkit.text import chunk, reading_time, slugify


def test_slugify_simple():
    assert slugify("Hello World") == "hello-world"


def test_slugify_collapses_punctuation_and_trims():
    assert slugify("  C++ & Rust: a -- comparison!  ") == "c-rust-a-comparison"


def test_slugify_keeps_digits():
    assert slugify("Top 10 tips") == "top-10-tips"


def test_chunk_even():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_chunk_remainder():
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_chunk_empty():
    assert chunk([], 3) == []


def test_reading_time_rounds_up():
    assert reading_time("word " * 201) == 2


def test_reading_time_short_text():
    assert reading_time("just a few words") == 1


def test_reading_time_empty():
    assert reading_time("") == 0
