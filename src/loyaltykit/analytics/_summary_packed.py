"""The per-customer summary of an eager frame on packed integer keys: same figures, less work.

:func:`loyaltykit.analytics.summary` groups twice: by customer and period, then by customer. On
string customer ids both groupings hash and compare strings, and the value of each customer's
first period needs a ``min_by``. When the data allow it, this module computes exactly the same
frame with integers only:

* the customer id becomes an integer **image** that orders and compares like the id itself: the
  id's UTF-8 bytes padded with zero bytes to 8 and read big-endian as ``UInt64`` (ids of at
  most 8 bytes that do not end in a zero byte), or the integer id itself;
* customer and period are packed into **one** ``UInt64`` key, ``(image - smallest image) x
  number of periods + (period - first period)``, when that product fits in 64 bits;
* the rows are **sorted** by that key once, which brings each customer's periods together in
  order; both groupings then become run sums over the sorted rows (a running total read at the
  last row of each run, minus the one before: no hashing), the first and last period of a
  customer are its first and last row, and the output comes out sorted by customer id without
  a final sort;
* sums are packed: the value of a period and its count of purchases are summed as one integer
  ``value x 2^b + count`` (with refunds), the number of periods and the total value likewise.
  Bounds taken from the data (the number of rows and periods, the sum of absolute values)
  prove that no packed sum can overflow, or the packed plan is not used, so results are exact;
* amounts are summed as integers in their smallest unit (decimals of precision up to 18);
* refunds are matched to their purchases through a 64-bit hash of the transaction id first (a
  cheap ``is_in`` over all purchases), then exactly, by a join of the few candidates;
* the ids are rebuilt from the images of the output (or the integer ids shifted back).

:func:`packed_summary` returns ``None`` whenever one of these conditions fails (longer ids,
float amounts, nulls in the id or the amount, sums that could overflow, small frames); the
caller then runs the general plan. The figures are the same either way (a property test compares both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import polars as pl

from loyaltykit.analytics._frames import exact_ratio
from loyaltykit.protocols import FrameT

__all__ = ["ENABLED", "MIN_ROWS", "packed_summary"]

ENABLED = True
"""Whether :func:`loyaltykit.analytics.summary` may use this plan; tests switch it off to get
the general plan of the same frame."""

MIN_ROWS: Final = 50_000
"""Frames shorter than this take the general plan (the packing's set-up costs more there)."""

_LIMIT: Final = 1 << 62
"""Packed sums are kept below this (Int64 holds up to ``2**63 - 1``; one bit of margin)."""

_K = "__k"
_D = "__d"
_V = "__v"
_Q = "__q"
_W = "__w"
_R = "__r"


def _image(
    frame: pl.DataFrame | pl.LazyFrame, column: str
) -> tuple[pl.Expr, Callable[[pl.Series], pl.Series], pl.Expr | None] | None:
    """An order-preserving integer image of the customer id column, the way back, and a check.

    :returns: ``None`` when the column has no such image; else the image expression, the
        function from images back to ids, and a boolean aggregate that must come out false for
        the image to be one-to-one (or ``None`` when it always is).
    """
    dtype = frame.collect_schema()[column]
    if isinstance(frame, pl.DataFrame) and frame.get_column(column).null_count():
        return None  # (a lazy frame's null ids show as null images, which the caller checks)
    if dtype in (pl.Int128, pl.UInt128):
        return None
    if dtype.is_integer():
        if dtype.is_unsigned_integer():
            return pl.col(column).cast(pl.UInt64), lambda k: k.cast(dtype), None
        return pl.col(column).cast(pl.Int64), lambda k: k.cast(dtype), None
    if dtype != pl.String:
        return None
    # "A" and "A\0" would share an image
    clash = pl.col(column).str.ends_with("\x00").any()
    # pad_end pads to 8 *characters*: a non-ASCII id may come out longer than 8 bytes and then
    # reinterprets to null, which the caller checks (as it checks ids longer than 8 bytes).
    image = (
        pl.col(column)
        .str.pad_end(8, "\x00")
        .cast(pl.Binary)
        .bin.reinterpret(dtype=pl.UInt64, endianness="big")
    )

    def back(k: pl.Series) -> pl.Series:
        # numpy's fixed-width bytes drop the trailing zero bytes of the padding
        raw = k.to_numpy().astype(">u8").view("S8")
        return pl.Series(column, raw, dtype=pl.Binary).cast(pl.String)

    return image, back, clash


def _minor_units(
    frame: pl.DataFrame | pl.LazyFrame, amount: str | None
) -> tuple[pl.Expr, int] | None:
    """The amount as an Int64 count of its smallest unit and that unit's power of ten.

    Amounts with nulls take the general plan, whose refund rules compare with null amounts:
    checked here for an eager frame, by the caller's statistics for a lazy one.
    """
    if amount is None:
        return pl.lit(0, pl.Int64), 0
    if isinstance(frame, pl.DataFrame) and frame.get_column(amount).null_count():
        return None
    dtype = frame.collect_schema()[amount]
    if isinstance(dtype, pl.Decimal):
        precision = dtype.precision if dtype.precision is not None else 38
        if precision > 18:
            return None
        scale = dtype.scale or 0
        return (pl.col(amount) * 10**scale).cast(pl.Int64), scale
    if dtype.is_integer() and dtype not in (pl.UInt64, pl.Int128, pl.UInt128):
        return pl.col(amount).cast(pl.Int64), 0
    return None


def _run_edge(key: str, step: int) -> pl.Expr:
    """True on the first (``step=1``) or last (``step=-1``) row of each run of equal ``key``."""
    return (pl.col(key) != pl.col(key).shift(step)).fill_null(True)


def _run_sums(frame: pl.LazyFrame, key: str, value: str, carry: list[str]) -> pl.LazyFrame:
    """``value`` summed over each run of equal ``key`` in ``frame`` (sorted by ``key``); the
    ``carry`` columns as they are on the run's last row.

    One row per run, in order: the running total at the run's last row minus the one before it.
    No hashing and no group bookkeeping; the caller's bounds keep the running total of all rows
    within Int64 (it is at most the sum of the absolute values).
    """
    running = pl.col("__running")
    return (
        frame.with_columns(pl.col(value).cum_sum().alias("__running"))
        .filter(_run_edge(key, -1))
        .select(key, (running - running.shift(1).fill_null(0)).alias(value), *carry)
    )


def packed_summary(
    frame: FrameT,
    *,
    customer_id: str,
    amount: str | None,
    kind: str | None,
    transaction_id: str,
    refund_of: str,
    key: pl.Expr,
    end_key: int,
    scale: int,
    unit: int,
) -> FrameT | None:
    """The summary of ``frame`` on packed integers, or ``None`` when the data do not allow it.

    An eager frame is summarised at once: its purchase rows are materialised (as integer
    images, period numbers and minor units) and the ids rebuilt from the images at the end. A
    lazy frame gets a lazy plan back: the statistics the packing needs (id range, period range,
    value bounds, nulls), the refund totals and the refunded purchases are collected first --
    small results, which read the input once more -- and the customer ids ride along through
    the sort instead of being rebuilt.

    :param key: the period number of each row (:func:`loyaltykit.analytics._frames.period_number`).
    :param end_key: period number of the last period counted.
    :param scale: microseconds per period number; ``unit``: microseconds per time unit.
    :returns: exactly the frame of the general plan (:func:`loyaltykit.analytics.summary`), sorted
        by customer id (the grouping runs over rows sorted by customer and period, so the sorted
        order costs nothing more; ``sort=False`` gets it too).
    """
    eager = isinstance(frame, pl.DataFrame)
    if not ENABLED or (isinstance(frame, pl.DataFrame) and frame.height < MIN_ROWS):
        return None
    image = _image(frame, customer_id)
    money = _minor_units(frame, amount)
    if image is None or money is None:
        return None
    k_expr, back, clash = image
    v_expr, decimals = money
    schema = frame.collect_schema()
    id_dtype = schema[customer_id]
    # a lazy plan carries string ids through the sort; integer ids are shifted back
    carry = [customer_id] if not eager and id_dtype == pl.String else []
    lf = frame.lazy()
    in_window = key <= end_key
    purchase_rows = lf if kind is None else lf.filter(pl.col(kind) == "purchase")
    purchases = purchase_rows.select(
        k_expr.alias(_K), key.alias(_D), v_expr.alias(_V), *carry
    ).filter(pl.col(_D) <= end_key)
    stats = [
        pl.len().alias("n"),
        pl.col(_K).null_count().alias("nulls"),
        pl.col(_K).min().alias("k0"),
        pl.col(_K).max().alias("k1"),
        pl.col(_D).min().alias("d0"),
        pl.col(_D).max().alias("d1"),
        pl.col(_V).abs().cast(pl.Float64).sum().alias("bound"),
    ]
    checks = []
    if clash is not None:
        checks.append(clash)
    if not eager and amount is not None:
        checks.append(pl.col(amount).is_null().any())
    queries: list[pl.LazyFrame] = [purchases if eager else purchases.select(stats)]
    if checks:
        queries.append(lf.select(pl.any_horizontal(*checks).alias("refused")))
    if kind is not None:
        queries.append(
            lf.filter((pl.col(kind) == "refund") & in_window)
            .group_by(refund_of)
            .agg(v_expr.sum().alias(_R))
        )
    # one call, so that polars can run the queries side by side
    head, *rest = pl.collect_all(queries)
    if checks and rest.pop(0).item():
        return None
    pre = head if eager else None  # the materialised purchase rows of an eager frame
    n, nulls, k0, k1, d0, d1, bound = (head if pre is None else pre.select(stats)).row(0)
    if n == 0 or nulls:
        return None
    span = int(d1) - int(d0) + 1
    signed = id_dtype.is_signed_integer()
    if (int(k1) - int(k0) + 1) * span >= 1 << 64 or (signed and int(k1) - int(k0) >= 1 << 63):
        return None
    touched = None
    if rest and rest[0].height:
        refunds = rest[0]
        assert kind is not None
        candidates = lf
        if schema[transaction_id] == schema[refund_of]:
            # equal values of one dtype hash alike (across dtypes they need not: Int32 -1 and
            # Int64 -1 differ), so the hash finds every refunded purchase, and a few others
            hashes = refunds.get_column(refund_of).hash().implode()
            candidates = lf.filter(pl.col(transaction_id).hash().is_in(hashes))
        touched = (
            candidates.filter((pl.col(kind) == "purchase") & in_window)
            .join(refunds.lazy(), left_on=transaction_id, right_on=refund_of, how="inner")
            .select(k_expr.alias(_K), key.alias(_D), v_expr.alias(_V), _R, *carry)
            .collect()
        )
        bound += float(touched.get_column(_R).abs().cast(pl.Float64).sum())
    # the largest |sum of values| of any group, rounded up past float error
    cap = int(bound) + 2 + int(bound * 1e-12)
    count_bits = int(n).bit_length()
    period_bits = span.bit_length()
    if (
        cap >= 1 << 53  # repeat totals convert to Float64 exactly
        or cap << count_bits >= _LIMIT
        or cap << period_bits >= _LIMIT
    ):
        return None

    source = pre.lazy() if pre is not None else purchases
    q = ((pl.col(_K) - k0).cast(pl.UInt64) * span + (pl.col(_D) - d0).cast(pl.UInt64)).alias(_Q)
    shift = 1 << count_bits
    if touched is not None and touched.height:
        # purchases count 1; a full refund takes the purchase's count back (-1) and its value,
        # a partial one the refunded value only
        full = pl.col(_R) >= pl.col(_V)
        taken = pl.when(full).then(pl.col(_V)).otherwise(pl.col(_R))
        if amount is None:
            full, taken = pl.lit(True), pl.lit(0, pl.Int64)
        adjust = touched.lazy().select(
            q, (-taken * shift + pl.when(full).then(-1).otherwise(0)).alias(_W), *carry
        )
        rows = pl.concat([source.select(q, (pl.col(_V) * shift + 1).alias(_W), *carry), adjust])
        periods = (
            _run_sums(rows.sort(_Q), _Q, _W, carry)
            .filter(pl.col(_W) % shift > 0)  # periods whose purchases were all refunded go
            .select(_Q, (pl.col(_W) // shift).alias(_V), *carry)
        )
    else:
        periods = _run_sums(source.select(q, _V, *carry).sort(_Q), _Q, _V, carry)

    # periods come sorted by customer and period: a customer's first row is its first period,
    # its last row its last period; the number of periods and their total are one packed sum
    period_shift = 1 << period_bits
    packed = pl.col(_V) * period_shift + 1
    customers = periods.with_columns(
        (pl.col(_Q) // span).alias(_K), packed.cum_sum().alias("__cs"), packed.alias("__nv")
    )
    starts = customers.filter(_run_edge(_K, 1)).select(
        _K,
        *carry,
        (pl.col(_Q) % span).cast(pl.Int64).alias("__first"),
        pl.col(_V).alias("__first_value"),
        (pl.col("__cs") - pl.col("__nv")).alias("__before"),
    )
    ends = customers.filter(_run_edge(_K, -1)).select(
        (pl.col(_Q) % span).cast(pl.Int64).alias("__last"), pl.col("__cs").alias("__through")
    )
    # one start and one end per customer, both in order: side by side they line up
    grouped = pl.concat([starts, ends], how="horizontal").with_columns(
        (pl.col("__through") - pl.col("__before")).alias("__nv")
    )
    n_periods = pl.col("__nv") % period_shift
    total = pl.col("__nv") // period_shift
    first = pl.col("__first")
    last = pl.col("__last")
    first_value = pl.col("__first_value")
    frequency = (n_periods - 1).cast(pl.Int64)
    if carry:
        ids = pl.col(customer_id)
    elif signed:
        ids = (pl.col(_K).cast(pl.Int64) + k0).cast(id_dtype)
    else:
        ids = (pl.col(_K) + k0).cast(id_dtype)
    columns = [
        pl.col(_K) if eager else ids.alias(customer_id),
        frequency.alias("frequency"),
        exact_ratio(last - first, scale, unit).alias("recency"),
        exact_ratio(end_key - d0 - first, scale, unit).alias("T"),
    ]
    if amount is not None:
        # as the general plan: the repeat total as the nearest float (its decimal's Float64
        # cast), divided by the frequency; exact_ratio, as polars divides by a literal as a
        # multiplication by the reciprocal
        repeat = exact_ratio(total - first_value, 1, 10**decimals)
        columns.append(
            pl.when(frequency > 0)
            .then(repeat / frequency.cast(pl.Float64))
            .otherwise(0.0)
            .alias("monetary_value")
        )
    plan = grouped.select(columns)  # sorted by the image, that is by customer id
    if not eager:
        return plan  # type: ignore[return-value]
    out = plan.collect()
    relative = out.get_column(_K)
    ids_out = relative.cast(pl.Int64) + k0 if k0 < 0 or signed else relative + k0
    return out.drop(_K).insert_column(0, back(ids_out).alias(customer_id))  # type: ignore[return-value]
