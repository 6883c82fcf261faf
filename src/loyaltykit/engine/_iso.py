"""ISO text of the engine's datetimes, memoised: one event writes the same few times into its
outcome, its entries and the member's state, and ``datetime.isoformat`` costs more than a
dictionary lookup."""

from __future__ import annotations

import datetime as dt

_UTC = dt.UTC
_MEMO: dict[dt.datetime, str] = {}
_MEMO_MAX = 4096


def iso(value: dt.datetime) -> str:
    """``value.isoformat()``.

    Memoised only for plain ``datetime`` objects in UTC (``tzinfo is datetime.UTC``, what the
    stores read back and what most callers pass): among those, equal values have equal fields,
    hence equal text. (Times of other zones can compare equal with a different offset, or, in
    a repeated local hour, be different instants that compare equal.)
    """
    if value.tzinfo is _UTC and type(value) is dt.datetime:
        found = _MEMO.get(value)
        if found is None:
            found = value.isoformat()
            if len(_MEMO) >= _MEMO_MAX:
                _MEMO.clear()
            _MEMO[value] = found
        return found
    return value.isoformat()


def opt_iso(value: dt.datetime | None) -> str | None:
    """:func:`iso`, passing ``None`` through."""
    return None if value is None else iso(value)
