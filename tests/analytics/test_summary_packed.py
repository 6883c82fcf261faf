"""The packed plan of summary() on eager frames gives exactly the general plan's frame.

``loyaltykit.analytics._summary_packed.packed_summary`` computes the summary of an eager frame on
packed integer keys and returns ``None`` when the data do not allow it. Every test here compares
``summary(frame)`` (eager, packed when possible) with the general plan, ``summary(frame.lazy())``
collected and sorted as the eager general path sorts, exactly (values, dtypes, column order),
and checks through a spy whether the packed plan answered, so that no comparison passes without
exercising the path it is about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from analytics_strategies import END, transactions
from hypothesis import event, example, given
from hypothesis import strategies as st
from packed_strategies import SummaryCase, image, integer_ids, summary_cases
from polars.testing import assert_frame_equal

from loyaltykit.analytics import _summary_packed, summary
from loyaltykit.analytics._frames import exact_ratio, sort_frame
from loyaltykit.datasets import generate
from loyaltykit.errors import InvalidValueError, LoyaltyKitError, ModelInputError
from loyaltykit.schema import TRANSACTION_SCHEMA

UTC = dt.UTC
DAY0 = dt.datetime(2024, 1, 1, 10, tzinfo=UTC)
OBSERVATION_END = dt.date(2024, 3, 31)


@contextmanager
def packed_spy(min_rows: int | None = 0) -> Iterator[list[bool]]:
    """Record, per call of ``packed_summary``, whether it answered (``True``) or fell back.

    :param min_rows: the ``MIN_ROWS`` to patch in (``None`` keeps the module's own).
    """
    answered: list[bool] = []
    real = _summary_packed.packed_summary

    def spy(frame: pl.DataFrame, **kwargs: Any) -> pl.DataFrame | None:
        result = real(frame, **kwargs)
        answered.append(result is not None)
        return result

    with pytest.MonkeyPatch.context() as patch:
        if min_rows is not None:
            patch.setattr(_summary_packed, "MIN_ROWS", min_rows)
        patch.setattr(_summary_packed, "packed_summary", spy)
        yield answered


def general(frame: pl.DataFrame, **kwargs: Any) -> pl.DataFrame:
    """The general plan's frame (the packed plan switched off), ordered as the eager general path
    orders it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_summary_packed, "ENABLED", False)
        out = summary(frame.lazy(), **kwargs).collect()
    return sort_frame(out, str(kwargs.get("customer_id", "customer_id")))


def lazy(frame: pl.DataFrame, **kwargs: Any) -> pl.DataFrame:
    """The summary of ``frame.lazy()`` -- the packed plan's lazy form where the data allow it --
    collected and ordered as :func:`general`."""
    out = summary(frame.lazy(), **kwargs)
    assert isinstance(out, pl.LazyFrame)
    return sort_frame(out.collect(), str(kwargs.get("customer_id", "customer_id")))


def check(frame: pl.DataFrame, *, sort: bool = True, **kwargs: Any) -> bool:
    """Assert eager ``summary(frame)`` (MIN_ROWS 0) equals the general plan; return whether the
    packed plan answered."""
    kwargs.setdefault("observation_end", OBSERVATION_END)
    customer_id = str(kwargs.get("customer_id", "customer_id"))
    with packed_spy() as answered:
        eager = summary(frame, sort=sort, **kwargs)
    assert len(answered) == 1
    expected = general(frame, **kwargs)
    if not sort:
        eager = sort_frame(eager, customer_id)
    assert_frame_equal(eager, expected, check_exact=True)
    assert eager.schema[customer_id] == frame.schema[customer_id]
    assert_frame_equal(lazy(frame, sort=sort, **kwargs), expected, check_exact=True)
    return answered[0]


def frame(
    customers: list[Any],
    amounts: list[Any],
    *,
    days: list[int] | None = None,
    kinds: list[str] | None = None,
    refund_of: list[str | None] | None = None,
    id_dtype: pl.DataType | None = None,
    amount_dtype: pl.DataType = TRANSACTION_SCHEMA["amount"],
) -> pl.DataFrame:
    """Transactions ``t0, t1, ...`` of ``customers[i]`` on day ``days[i]`` (default ``i``) after
    2024-01-01 (UTC); purchases unless ``kinds`` says otherwise."""
    n = len(customers)
    return pl.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "customer_id": pl.Series(customers, dtype=id_dtype),
            "occurred_at": [
                DAY0 + dt.timedelta(days=(days or list(range(n)))[i]) for i in range(n)
            ],
            "amount": pl.Series(amounts, dtype=amount_dtype),
            "kind": kinds or ["purchase"] * n,
            "refund_of": pl.Series(refund_of or [None] * n, dtype=pl.String),
        }
    )


def decimals(*values: str | int) -> list[Decimal]:
    return [Decimal(v) for v in values]


# ---------------------------------------------------------------------------------------------
# properties: packed == general
# ---------------------------------------------------------------------------------------------


# hours in days or weeks: see test_known_mismatches
_PERIOD_UNITS = [
    ("D", "D"),
    ("D", "W"),
    ("W", "W"),
    ("W", "D"),
    ("M", "D"),
    ("H", "H"),
    ("H", "D"),
    ("H", "W"),
]


@given(transactions(), st.sampled_from(_PERIOD_UNITS))
@example(pl.DataFrame(schema=TRANSACTION_SCHEMA), ("D", "D"))
def test_packed_equals_general_on_core_frames(tx: pl.DataFrame, units: tuple[str, str]) -> None:
    kwargs: dict[str, Any] = {"observation_end": END, "period": units[0], "time_unit": units[1]}
    answered = check(tx, **kwargs)
    # ids "c0".."c7", 91 days, cents: the packed plan answers whenever there is a purchase
    assert answered == (tx.height > 0)
    assert check(tx, sort=False, **kwargs) == answered
    assert check(tx.drop("kind"), **kwargs) == answered
    assert check(tx, amount=None, **kwargs) == answered


def _check_case(case: SummaryCase) -> None:
    answered = check(case.frame, **case.kwargs)
    assert check(case.frame, sort=False, **case.kwargs) == answered
    expected = general(case.frame, **case.kwargs)
    event(f"packed: {answered}")
    if case.packable and expected.height:
        assert answered, "the packed plan should have answered this frame"


@given(summary_cases())
def test_packed_equals_general_on_edge_frames(case: SummaryCase) -> None:
    _check_case(case)


@pytest.mark.parametrize("dtype", [pl.Int64(), pl.UInt64(), pl.Int32(), pl.UInt16()])
@given(data=st.data())
def test_packed_equals_general_on_integer_ids(dtype: pl.DataType, data: st.DataObject) -> None:
    case = data.draw(summary_cases(ids=integer_ids(dtype), id_dtype=dtype, max_purchases=20))
    _check_case(case)


# ---------------------------------------------------------------------------------------------
# examples the packed plan answers
# ---------------------------------------------------------------------------------------------


def test_prefix_sharing_ids_of_every_length() -> None:
    # "" to "\x7f": nearly 2**63 wide, so one period
    ids = ["", "a", "a\x00b", "a ", "ab", "abcdefg", "abcdefgh", "abcdefgg", "\x01", "\x7f"]
    tx = frame(ids * 2, decimals(*range(1, 21)), days=[0] * 20)
    assert check(tx)
    assert check(tx, sort=False)
    # ids sharing their first 4 bytes, over many days
    ids = ["abcd", "abcd\x01", "abcd\x00e", "abcde", "abcdeeee", "abcdz", "abcd-", "abcdeeef"]
    tx = frame(ids * 3, decimals(*range(1, 25)), days=[3 * i % 50 for i in range(24)])
    assert check(tx)
    assert check(tx, sort=False, period="W", time_unit="W")
    assert check(tx, period="H", time_unit="H")


def test_refunds_partial_full_repeated_unknown_and_late() -> None:
    tx = frame(
        ["a", "a", "a", "b", "b", "c", "a", "a", "b", "b", "b", "c", "c"],
        decimals("10", "20", "30", "5", "7", "9", "4", "6", "2", "3", "1", "100", "9"),
        days=[0, 1, 2, 0, 40, 3, 1, 1, 41, 42, 200, 4, 5],
        kinds=["purchase"] * 6 + ["refund"] * 7,
        refund_of=[None] * 6 + ["t1", "t1", "t4", "t4", "t3", "nope", "t5"],
    )
    # a: t1 refunded in two parts (4 + 6 of 20); b: t4 refunded in full in two parts, t3 after
    # observation end; c: a refund of an unknown id and one of more than the purchase
    assert check(tx)
    assert check(tx, observation_end=dt.date(2024, 2, 10))  # t4 and its refunds outside
    assert check(tx, observation_end=dt.date(2024, 1, 2), time_unit="W")


@pytest.mark.parametrize(
    ("dtype", "ids"),
    [
        (pl.Int64(), [-(2**63), -(2**63) + 1, -1]),
        (pl.Int64(), [-(2**62), 0, 2**62 - 1]),
        (pl.Int64(), [-5, -3, 0, 7]),
        (pl.UInt64(), [2**63 + 5, 2**64 - 1, 2**63]),
        (pl.UInt64(), [1, 2**64 - 1]),
        (pl.Int32(), [-(2**31), 2**31 - 1, 0]),
        (pl.UInt8(), [0, 255, 7]),
        (pl.Int128(), [-5, 2**62]),
    ],
)
def test_integer_ids_keep_their_dtype(dtype: pl.DataType, ids: list[int]) -> None:
    n = 2 * len(ids)
    tx = frame(ids * 2, decimals(*range(1, n + 1)), days=[0] * n, id_dtype=dtype)
    assert check(tx) == (dtype != pl.Int128)  # 128-bit ids take the general plan
    out = summary(tx, observation_end=OBSERVATION_END)
    assert out.schema["customer_id"] == dtype
    assert out["customer_id"].to_list() == sorted(ids)


@pytest.mark.parametrize(
    ("amount_dtype", "values"),
    [
        (pl.Decimal(18, 2), ["0.01", "12.34", "-3.50", "0", "7"]),
        (pl.Decimal(18, 4), ["0.0001", "12.3456", "99999.9999", "-0.0001", "1"]),
        (pl.Decimal(18, 0), ["1", "2", "3", "4", "5"]),
        (pl.Decimal(9, 3), ["1.001", "2.5", "-3", "4", "5"]),
        (pl.Int64(), [1, -2, 3, 0, 2**40]),
        (pl.Int8(), [100, 100, 100, -100, 1]),
        (pl.Int16(), [30_000, 30_000, 30_000, 1, 2]),
    ],
)
def test_amount_dtypes(amount_dtype: pl.DataType, values: list[Any]) -> None:
    amounts = [v if isinstance(v, int) else Decimal(v) for v in values]
    tx = frame(["a", "a", "b", "a", "a"], amounts, days=[0, 0, 1, 3, 4], amount_dtype=amount_dtype)
    assert check(tx)
    assert check(tx, amount=None)


def test_null_amounts() -> None:
    # the general plan compares refunds with null amounts as null (not a full refund): the
    # packed plan leaves frames with null amounts to it
    tx = frame(
        ["a", "a", "a", "b"],
        [None, Decimal(5), Decimal(1), None],
        days=[0, 1, 2, 3],
        kinds=["purchase", "purchase", "refund", "refund"],
        refund_of=[None, None, "t0", "t1"],
    )
    assert not check(tx)
    assert not check(tx.drop("kind"))
    assert check(tx, amount=None)  # the amounts are not used


def test_dst_days_in_berlin() -> None:
    # 2024-03-31 and 2024-10-27: 23 and 25 local hours; 2024-10-27 01:30 UTC and 00:30 UTC are
    # both 02:30 local (different instants, same wall-clock hour)
    utc = [
        dt.datetime(2024, 3, 30, 22, 30, tzinfo=UTC),  # 2024-03-30 23:30 local
        dt.datetime(2024, 3, 30, 23, 30, tzinfo=UTC),  # 2024-03-31 01:30 local
        dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC),  # 03:30 local, after the gap
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC),
        dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC),
        dt.datetime(2024, 10, 27, 22, 30, tzinfo=UTC),  # 23:30 local, same day
        dt.datetime(2024, 10, 27, 23, 30, tzinfo=UTC),  # next local day
    ]
    tx = frame(["c1", "c1", "c2", "c1", "c2", "c2", "c1"], decimals(*range(1, 8)))
    tx = tx.with_columns(
        pl.Series("occurred_at", utc, dtype=pl.Datetime("us", UTC)).dt.convert_time_zone(
            "Europe/Berlin"
        )
    )
    end = dt.date(2024, 12, 31)
    for period, time_unit in [*_PERIOD_UNITS, ("D", "H"), ("M", "W")]:
        assert check(tx, observation_end=end, period=period, time_unit=time_unit)
    assert check(tx.with_columns(pl.col("occurred_at").dt.date()), observation_end=end)


def test_multi_chunk_frames() -> None:
    tx = frame(
        ["a", "a", "b", "a"],
        decimals("5", "7", "3", "7"),
        kinds=["purchase", "purchase", "purchase", "refund"],
        refund_of=[None, None, None, "t1"],
    )
    chunked = pl.concat([tx.slice(0, 1), tx.slice(1, 2), tx.slice(3)], rechunk=False)
    assert chunked.n_chunks("all") == [3] * tx.width
    assert check(chunked)


# ---------------------------------------------------------------------------------------------
# fallbacks: packed_summary returns None, summary() still gives the general plan's frame
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [
        ["abcdefghX", "abcdefghY", "abcdefgh"],  # longer than 8 bytes, same first 8
        ["ééé", "a"],  # 6 bytes, but padded to 8 characters: 11 bytes
        ["é", "abcdefé"],
        ["a\x00", "a"],  # would share an image
        ["a", None],
    ],
)
def test_ids_the_packing_cannot_take(ids: list[str | None]) -> None:
    tx = frame(ids * 2, decimals(*range(1, 2 * len(ids) + 1)), days=[0] * len(ids) + [1] * len(ids))
    assert not check(tx)
    assert not check(tx.cast({"customer_id": pl.Categorical}))


@pytest.mark.parametrize(
    ("amount_dtype", "values"),
    [
        (pl.Float64(), [1.5, 2.25, 3.0]),
        (pl.Decimal(38, 2), decimals("1.50", "2.25", "3")),
        (pl.UInt64(), [1, 2, 3]),
    ],
)
def test_amounts_the_packing_cannot_take(amount_dtype: pl.DataType, values: list[Any]) -> None:
    tx = frame(["a", "a", "b"], values, amount_dtype=amount_dtype)
    assert not check(tx)
    assert check(tx, amount=None)  # the amounts are not used


def test_sums_that_could_overflow_fall_back() -> None:
    top = Decimal("9999999999999999.99")  # the largest Decimal(18, 2)
    # 64 purchases of 10**18 - 1 cents: the sum does not fit in 63 bits
    tx = frame(["a"] * 64, [top] * 64, days=[i % 40 for i in range(64)])
    assert not check(tx)
    # Int64 amounts whose sum fits, but not once shifted to make room for a count
    tx = frame(["a", "a", "a"], [2**61, 2**61, 2**61], amount_dtype=pl.Int64())
    assert not check(tx)
    # large sums near the bounds: packed or not, the general plan's figures
    check(frame(["a", "b", "a"], [top, top, -top]))
    values = decimals("9007199254740.99", "9007199254740.93", "1234567890123.45", "0.07")
    check(frame(["a", "a", "a", "a"], values))  # repeat total above 2**53 cents
    check(frame(["a"] * 3, [2**55 + 1, 2**55 + 3, 2**54 + 1], amount_dtype=pl.Int64()))
    check(frame(["a"] * 3, [2**52 + 1, 2**52 + 3, 1], amount_dtype=pl.Int64()))


def test_large_sums_far_from_the_bounds_are_packed() -> None:
    # about 2**44 cents per purchase, 2**46 in all
    values = decimals("175921860444.15", "175921860444.17", "-175921860444.01", "0.01")
    assert check(frame(["a", "a", "b", "a"], values, days=[0, 1, 1, 5]))
    values = decimals("1759.2186044415", "175921.860444", "0.0003", "-1")
    assert check(frame(["a", "a", "a", "a"], values, amount_dtype=pl.Decimal(18, 4)))


def test_key_range_times_periods_of_64_bits_falls_back() -> None:
    low, high = "\x01", "\x7f" * 8
    width = image(high) - image(low) + 1
    periods = -(-(1 << 64) // width)  # fewest periods for which width x periods >= 2**64
    assert periods == 3
    assert check(frame([low, high], decimals(1, 2), days=[0, periods - 2]))
    assert not check(frame([low, high], decimals(1, 2), days=[0, periods - 1]))
    # ids one byte apart in their second byte: 2**48 + 1 ids wide, so 2**16 hours (7.5 years)
    low, high = "\x01", "\x01\x01"
    assert image(high) - image(low) + 1 == 2**48 + 1
    hours = [0, 2**16 - 2]
    tx = frame([low, high], decimals(1, 2), days=[0, 0])
    tx = tx.with_columns(pl.Series("occurred_at", [DAY0 + dt.timedelta(hours=h) for h in hours]))
    end = dt.date(2032, 1, 1)
    assert check(tx, period="H", time_unit="H", observation_end=end)
    later = tx.with_columns(
        pl.when(pl.col("customer_id") == high)
        .then(pl.col("occurred_at") + dt.timedelta(hours=1))
        .otherwise(pl.col("occurred_at"))
    )
    assert not check(later, period="H", time_unit="H", observation_end=end)
    assert check(later, period="D", observation_end=end)
    # signed ids 2**63 or more apart
    assert not check(frame([-(2**63), 0], decimals(1, 2), days=[0, 0], id_dtype=pl.Int64()))
    assert not check(frame([0, 2**64 - 1], decimals(1, 2), days=[0, 0], id_dtype=pl.UInt64()))


def test_no_purchase_in_the_window_falls_back() -> None:
    tx = frame(["a", "b"], decimals(1, 2), days=[100, 101])
    assert not check(tx)
    refunds_only = frame(["a"], decimals(1), kinds=["refund"], refund_of=["t9"])
    assert not check(refunds_only)


def test_min_rows() -> None:
    tx = frame(["a", "b", "a"], decimals(1, 2, 3))
    # below the module's MIN_ROWS: the general plan, packed_summary not even asked
    assert tx.height < _summary_packed.MIN_ROWS
    with packed_spy(min_rows=None) as answered:
        out = summary(tx, observation_end=OBSERVATION_END)
    assert answered == []
    assert_frame_equal(out, general(tx, observation_end=OBSERVATION_END), check_exact=True)
    # at the threshold and one row below
    with packed_spy(min_rows=3) as answered:
        summary(tx, observation_end=OBSERVATION_END)
        summary(tx.head(2), observation_end=OBSERVATION_END)
    assert answered == [True]


# ---------------------------------------------------------------------------------------------
# errors: raised before the packed plan, as on the general path
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        ("naive", {}, ModelInputError, "naive timestamps"),
        ("text", {}, ModelInputError, "dtype"),
        ("no_refund_of", {}, ModelInputError, "refund_of"),
        ("no_transaction_id", {}, ModelInputError, "transaction_id"),
        (None, {"customer_id": "member"}, ModelInputError, "'member'"),
        (None, {"amount": "spend"}, ModelInputError, "'spend'"),
        (None, {"timestamp": "when"}, ModelInputError, "'when'"),
        (None, {"period": "decade"}, InvalidValueError, "period"),
        (None, {"time_unit": "fortnight"}, InvalidValueError, "time_unit"),
        (None, {"observation_end": dt.datetime(2024, 3, 1)}, InvalidValueError, "timezone-aware"),
    ],
)
def test_errors_on_the_eager_path(
    change: str | None, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    tx = frame(["a", "a", "b"], decimals(1, 2, 3))
    if change == "naive":
        tx = tx.with_columns(pl.col("occurred_at").dt.replace_time_zone(None))
    elif change == "text":
        tx = tx.with_columns(pl.col("occurred_at").dt.to_string())
    elif change == "no_refund_of":
        tx = tx.drop("refund_of")
    elif change == "no_transaction_id":
        tx = tx.drop("transaction_id")
    arguments = {"observation_end": OBSERVATION_END, **kwargs}
    with pytest.raises(error, match=match) as lazy_error:
        summary(tx.lazy(), **arguments)
    for min_rows in (0, None):
        with packed_spy(min_rows) as answered, pytest.raises(error, match=match) as eager_error:
            summary(tx, **arguments)
        assert answered == []
        assert isinstance(eager_error.value, LoyaltyKitError)
        assert str(eager_error.value) == str(lazy_error.value)


# ---------------------------------------------------------------------------------------------
# a medium frame: the module's own MIN_ROWS
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def medium() -> pl.DataFrame:
    tx = generate(20_000, seed=11, with_feedback=False, with_interactions=False).transactions
    assert tx.height >= _summary_packed.MIN_ROWS
    assert tx.get_column("kind").value_counts().height == 2  # purchases and refunds
    return tx


@pytest.mark.parametrize(
    "kwargs",
    [
        {"observation_end": dt.date(2024, 6, 30)},
        {"observation_end": dt.date(2024, 12, 31), "period": "W", "time_unit": "W"},
        {"observation_end": dt.date(2024, 3, 31), "period": "M", "sort": False},
    ],
)
def test_medium_frame_takes_the_packed_plan(medium: pl.DataFrame, kwargs: dict[str, Any]) -> None:
    with packed_spy(min_rows=None) as answered:
        out = summary(medium, **kwargs)
    assert answered == [True]
    kwargs = dict(kwargs)
    if not kwargs.pop("sort", True):
        out = sort_frame(out, "customer_id")
    assert_frame_equal(out, general(medium, **kwargs), check_exact=True)


def test_medium_frame_in_berlin(medium: pl.DataFrame) -> None:
    tx = medium.with_columns(pl.col("occurred_at").dt.convert_time_zone("Europe/Berlin"))
    with packed_spy(min_rows=None) as answered:
        out = summary(tx, observation_end=dt.date(2024, 10, 27), period="H", time_unit="H")
    assert answered == [True]
    expected = general(tx, observation_end=dt.date(2024, 10, 27), period="H", time_unit="H")
    assert_frame_equal(out, expected, check_exact=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"observation_end": dt.date(2025, 1, 1)},
        {"observation_end": dt.date(2024, 6, 30), "period": "W", "time_unit": "W"},
        {"observation_end": dt.date(2024, 6, 30), "amount": None},
    ],
)
def test_lazy_frames_take_the_lazy_packed_plan(
    medium: pl.DataFrame, kwargs: dict[str, Any]
) -> None:
    with packed_spy(min_rows=None) as answered:
        out = summary(medium.lazy(), **kwargs)
    assert answered == [True]  # no minimum size for a lazy frame
    assert isinstance(out, pl.LazyFrame)
    assert_frame_equal(out.collect(), general(medium, **kwargs), check_exact=True)
    streamed = summary(medium.lazy(), **kwargs).collect(engine="streaming")
    assert_frame_equal(streamed, general(medium, **kwargs), check_exact=True)


def test_lazy_frames_with_nulls_take_the_general_plan(medium: pl.DataFrame) -> None:
    end = dt.date(2025, 1, 1)
    null_amount = medium.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("amount")).alias("amount")
    )
    null_id = medium.with_columns(
        pl.when(pl.int_range(pl.len()) == 3)
        .then(None)
        .otherwise(pl.col("customer_id"))
        .alias("customer_id")
    )
    for tx in (null_amount, null_id):
        with packed_spy(min_rows=None) as answered:
            out = summary(tx.lazy(), observation_end=end).collect()
        assert answered == [False]
        assert_frame_equal(sort_frame(out, "customer_id"), general(tx, observation_end=end))


def test_lazy_integer_ids(medium: pl.DataFrame) -> None:
    tx = medium.with_columns(
        (pl.col("customer_id").str.slice(1).cast(pl.Int64) - 10_000).alias("customer_id")
    )
    end = dt.date(2025, 1, 1)
    with packed_spy(min_rows=None) as answered:
        out = summary(tx.lazy(), observation_end=end).collect()
    assert answered == [True]
    assert out.schema["customer_id"] == pl.Int64
    assert_frame_equal(out, general(tx, observation_end=end), check_exact=True)


def test_large_shuffled_chunked_frame_agrees() -> None:
    """Several hundred thousand rows, shuffled and in many chunks: the packed plan's sort and
    run sums (running totals, shifts, two filtered frames side by side) run over many morsels
    of the streaming engine and must still line up with the general plan."""
    from loyaltykit.datasets import generate

    tx = generate(120_000, seed=5).transactions.sample(fraction=1.0, shuffle=True, seed=3)
    tx = pl.concat(list(tx.iter_slices(25_000)), rechunk=False)
    assert tx.n_chunks() > 10
    end = dt.date(2025, 1, 1)
    with packed_spy(min_rows=None) as answered:
        out = summary(tx, observation_end=end)
    assert answered == [True]
    assert_frame_equal(out, general(tx, observation_end=end), check_exact=True)


# ---------------------------------------------------------------------------------------------
# former mismatches between the plans (each fixed; kept as regression tests)
# ---------------------------------------------------------------------------------------------


def _at(*hours: int) -> pl.Series:
    return pl.Series("occurred_at", [DAY0.replace(hour=0) + dt.timedelta(hours=h) for h in hours])


def _t_in_days_of_hourly_periods() -> tuple[pl.DataFrame, dict[str, Any]]:
    # T of "a" is 2158 hours = 2158/24 days: the packed plan divides (89.91666666666667), the
    # general plan's aggregation multiplies by 1/unit (89.91666666666666); with one customer
    # both divide
    tx = frame(["a", "b"], decimals(1, 1)).with_columns(_at(2, 0))
    return tx, {"period": "H", "time_unit": "D"}


def _recency_in_weeks_of_hourly_periods() -> tuple[pl.DataFrame, dict[str, Any]]:
    tx = frame(["a", "a", "b"], decimals(1, 1, 1)).with_columns(_at(0, 23, 0))
    return tx, {"period": "H", "time_unit": "W"}


def _int128_ids() -> tuple[pl.DataFrame, dict[str, Any]]:
    # the packed plan casts the ids to Int64 / UInt64 (strict): InvalidOperationError
    return frame([2**70, 1], decimals(1, 2), days=[0, 0], id_dtype=pl.Int128()), {}


def _uint128_ids() -> tuple[pl.DataFrame, dict[str, Any]]:
    return frame([2**70, 1], decimals(1, 2), days=[0, 0], id_dtype=pl.UInt128()), {}


def _int128_amounts() -> tuple[pl.DataFrame, dict[str, Any]]:
    # the packed plan casts the amounts to Int64 (strict): InvalidOperationError
    return frame(["a", "a"], [2**70, 1], amount_dtype=pl.Int128()), {}


def _int32_amounts_beyond_32_bits() -> tuple[pl.DataFrame, dict[str, Any]]:
    # repeat total 2**31: the general plan sums in Int32 and wraps (monetary_value
    # -1073741824.0), the packed plan sums in Int64 (1073741824.0)
    return frame(["a"] * 3, [1, 2**30, 2**30], amount_dtype=pl.Int32()), {}


def _uint32_amounts_beyond_32_bits() -> tuple[pl.DataFrame, dict[str, Any]]:
    # repeat total 2**32: the general plan wraps to 0.0, the packed plan 2147483648.0
    return frame(["a"] * 3, [1, 2**31, 2**31], amount_dtype=pl.UInt32()), {}


def _refunds_of_unsigned_amounts() -> tuple[pl.DataFrame, dict[str, Any]]:
    # the general plan negates the refunded UInt32 amount: InvalidOperationError ("`neg`
    # operation not supported for dtype `u32`"); the packed plan answers
    tx = frame(
        ["a", "a"],
        [5, 2],
        kinds=["purchase", "refund"],
        refund_of=[None, "t0"],
        amount_dtype=pl.UInt32(),
    )
    return tx, {}


def _refund_ids_of_another_integer_width() -> tuple[pl.DataFrame, dict[str, Any]]:
    # the general plan's join matches transaction_id -1 (Int64) with refund_of -1 (Int32); the
    # packed plan's hash prefilter does not (the hashes of -1 differ by width), so the full
    # refund is lost: "a" appears (frequency 0) where the general plan has no row
    tx = frame(
        ["a", "a"], decimals(5, 5), kinds=["purchase", "refund"], refund_of=[None, None]
    ).with_columns(
        pl.Series("transaction_id", [-1, -2], dtype=pl.Int64),
        pl.Series("refund_of", [None, -1], dtype=pl.Int32),
    )
    return tx, {}


_CASES = [
    # T and recency are correctly rounded divisions in both plans (exact_ratio)
    (_t_in_days_of_hourly_periods, True),
    (_recency_in_weeks_of_hourly_periods, True),
    # ids and amounts of 128 bits take the general plan
    (_int128_ids, False),
    (_uint128_ids, False),
    (_int128_amounts, False),
    # the general plan sums narrow integer amounts as Int64 and can negate unsigned ones
    (_int32_amounts_beyond_32_bits, True),
    (_uint32_amounts_beyond_32_bits, True),
    (_refunds_of_unsigned_amounts, True),
    # the hash prefilter is used only when transaction_id and refund_of share a dtype
    (_refund_ids_of_another_integer_width, True),
]


@pytest.mark.parametrize(
    ("case", "packs"), [pytest.param(c, p, id=c.__name__.strip("_")) for c, p in _CASES]
)
def test_former_mismatches_agree(case: Any, packs: bool) -> None:
    tx, kwargs = case()
    assert check(tx, **kwargs) == packs


@given(
    st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=1, max_size=50),
    st.sampled_from(
        [(3_600_000_000, 86_400_000_000), (86_400_000_000, 604_800_000_000), (1, 7), (24, 1)]
    ),
)
def test_exact_ratio_rounds_like_python(values: list[int], ratio: tuple[int, int]) -> None:
    numerator, denominator = ratio
    frame = pl.DataFrame({"x": values}, schema={"x": pl.Int64})
    for engine in ("in-memory", "streaming"):
        got = (
            frame.lazy()
            .select(exact_ratio(pl.col("x"), numerator, denominator).alias("r"))
            .collect(engine=engine)
            .get_column("r")
            .to_list()
        )
        assert got == [v * numerator / denominator for v in values]
