"""sort_frame: the integer-image sort of short string keys orders rows as the string sort does."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyaltykit.analytics import _frames
from loyaltykit.analytics._frames import sort_frame


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the integer path on small frames too."""
    monkeypatch.setattr(_frames, "_PACKED_SORT_MIN_ROWS", 0)


def _keys(alphabet: st.SearchStrategy[str], max_size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.text(alphabet, max_size=max_size), unique=True, max_size=60)


@pytest.mark.usefixtures("small_threshold")
@settings(max_examples=150, deadline=None)
@given(
    keys=st.one_of(
        _keys(st.characters(codec="utf-8", exclude_characters="\x00"), 8),
        _keys(st.characters(codec="utf-8", exclude_characters="\x00"), 16),
        _keys(st.sampled_from("ab\x00é€"), 20),
        _keys(st.characters(codec="utf-8"), 40),
    )
)
def test_same_order_as_string_sort(keys: list[str]) -> None:
    frame = pl.DataFrame(
        {"id": keys, "pos": list(range(len(keys)))}, schema={"id": pl.String, "pos": pl.Int64}
    )
    assert sort_frame(frame, "id").equals(frame.sort("id"))


@pytest.mark.usefixtures("small_threshold")
def test_nulls_first_like_the_string_sort() -> None:
    frame = pl.DataFrame({"id": ["b", None, "a", "ab"], "pos": [0, 1, 2, 3]})
    assert sort_frame(frame, "id").equals(frame.sort("id"))


@pytest.mark.usefixtures("small_threshold")
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["C000002", "C000010", "C000001"], ["C000001", "C000002", "C000010"]),
        (["AB", "A", "ABC", "B"], ["A", "AB", "ABC", "B"]),
        (["CUST-0000000123", "CUST-0000000012"], ["CUST-0000000012", "CUST-0000000123"]),
        # "AB" and "AB\x00" have the same image: the string sort decides
        (["AB\x00", "AB", "A"], ["A", "AB", "AB\x00"]),
        # longer than 16 bytes: the string sort
        (["x" * 17 + "b", "x" * 17 + "a"], ["x" * 17 + "a", "x" * 17 + "b"]),
    ],
)
def test_examples(keys: list[str], expected: list[str]) -> None:
    frame = pl.DataFrame({"id": keys})
    assert sort_frame(frame, "id").get_column("id").to_list() == expected


def test_non_string_keys_use_the_plain_sort() -> None:
    frame = pl.DataFrame({"id": [3, 1, 2]})
    assert sort_frame(frame, "id").get_column("id").to_list() == [1, 2, 3]


def test_large_frame_takes_the_integer_path() -> None:
    ids = [f"C{i:06d}" for i in range(60_000)][::-1]
    frame = pl.DataFrame({"id": ids})
    assert frame.height >= _frames._PACKED_SORT_MIN_ROWS
    assert sort_frame(frame, "id").equals(frame.sort("id"))
