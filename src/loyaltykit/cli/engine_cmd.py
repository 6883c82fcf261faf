"""``loyaltykit ingest``, ``balance``, ``statement``, ``redeem`` and ``expire``: the program engine
on a durable store from the command line.

``--db`` takes a SQLite file path (created on first use) or a PostgreSQL URL; it can also come
from the ``LOYALTYKIT_DB`` environment variable. Write commands (``ingest``, ``redeem``,
``expire``) create or upgrade the ledger schema; read commands never create anything.

Every event is its own committed transaction, and event ids make re-delivery harmless, so
``ingest`` is resumable: after an interruption (even ``kill -9``), run the same command again and
only the events that are not yet recorded are applied.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from loyaltykit.cli._app import app, console, err_console, fail, print_json
from loyaltykit.errors import LedgerError, LoyaltyKitError, StoreError

DB_ENV = "LOYALTYKIT_DB"
"""Environment variable read when ``--db`` is not given."""

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        help="Ledger store: a SQLite file path or a postgresql:// URL (env LOYALTYKIT_DB).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ProgramArg = Annotated[
    Path,
    typer.Argument(help="The program definition (TOML).", show_default=False),
]


def _parse_time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            f"{option}={value!r}: not an ISO 8601 time; write e.g. 2025-03-01T00:00:00+00:00"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise fail(
            f"{option}={value!r}: needs a UTC offset, e.g. 2025-03-01T00:00:00+00:00 or "
            "2025-03-01T00:00:00Z"
        )
    return parsed


def _is_url(target: str) -> bool:
    return "://" in target


@contextmanager
def _store(target: str, *, write: bool) -> Iterator[Any]:
    """Open the store named by ``--db``; write commands migrate, read commands require a ledger."""
    from loyaltykit.engine.stores import open_store

    if not target.strip():
        raise fail(f"--db is empty; give a SQLite file path or a postgresql:// URL ({DB_ENV})")
    if not write and not _is_url(target) and target != ":memory:" and not Path(target).exists():
        raise fail(
            f"--db {target!r}: no such ledger file; check the path, or create the ledger with "
            "`loyaltykit ingest PROGRAM.toml EVENTS --db PATH`"
        )
    try:
        store = open_store(target, migrate=write)
    except LoyaltyKitError as exc:
        raise fail(exc) from None
    try:
        yield store
    finally:
        store.close()


def _program(path: Path) -> Any:
    from loyaltykit.engine import load_program

    try:
        return load_program(path)
    except LoyaltyKitError as exc:
        raise fail(exc) from None


def _reader() -> Any:
    """An engine for read-only commands (balances and statements need no program rules)."""
    from loyaltykit.core.program import Program

    return Program(name="loyaltykit-cli-read-only")


# --------------------------------------------------------------------------------------------
# ingest
# --------------------------------------------------------------------------------------------


def _event_lines(events: str) -> tuple[str, list[str] | None]:
    """The source name and, for stdin, the buffered lines (files are read twice instead)."""
    if events == "-":
        return "<stdin>", sys.stdin.read().splitlines()
    path = Path(events)
    if not path.is_file():
        raise fail(f"EVENTS {events!r}: no such file; give a JSON-lines file or - for stdin")
    return events, None


def _open_lines(events: str, buffered: list[str] | None) -> Iterator[str]:
    if buffered is not None:
        yield from buffered
        return
    with open(events, encoding="utf-8") as fh:
        yield from fh


def _validate(source: str, lines: Iterator[str]) -> int:
    """Parse every event before writing anything; same id with two payloads is refused too."""
    from loyaltykit.engine import read_events
    from loyaltykit.engine.store import fingerprint
    from loyaltykit.errors import IdempotencyConflictError

    seen: dict[str, tuple[str, int]] = {}
    count = 0
    try:
        for count, event in enumerate(read_events(lines, source=source), start=1):
            fp = fingerprint(event.payload())
            first = seen.setdefault(event.event_id, (fp, count))
            if first[0] != fp:
                raise IdempotencyConflictError(
                    f"{source}: event id {event.event_id!r} appears twice with different "
                    f"payloads (events #{first[1]} and #{count}); give each event its own id"
                )
    except LoyaltyKitError as exc:
        raise fail(f"{exc}\nnothing was written; fix the events file and run again") from None
    return count


@app.command("ingest")
def ingest_command(
    program: ProgramArg,
    events: Annotated[
        str,
        typer.Argument(
            help="Events as JSON lines (one event object per line), or - for stdin.",
            show_default=False,
        ),
    ],
    db: DbOption,
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error",
            help="What a rejected event does: 'stop' (default; the events before it stay "
            "committed) or 'skip' (report it and go on; exit status 1).",
        ),
    ] = "stop",
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Apply a file of events to the ledger, one committed transaction per event.

    The whole file is parsed first: a malformed event stops the command before anything is
    written. Re-running after an interruption applies only the events not yet recorded (the
    others are recognised by their event id and skipped).
    """
    from loyaltykit.engine import Engine, read_events

    if on_error not in ("stop", "skip"):
        raise fail(f"--on-error={on_error!r}: must be 'stop' or 'skip'")
    prog = _program(program)
    source, buffered = _event_lines(events)
    total = _validate(source, _open_lines(events, buffered))
    applied = replayed = 0
    rejected: list[dict[str, Any]] = []
    stopped: dict[str, Any] | None = None
    start = time.perf_counter()
    with _store(db, write=True) as store:
        engine = Engine(prog, store, migrate=False)
        bar = Progress(
            TextColumn("ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=err_console,
            disable=not progress,
            transient=False,
        )
        with bar:
            task = bar.add_task("ingest", total=total, rate="")
            number, event_id = 0, None
            try:
                # each event is its own durable transaction; its fsync overlaps the next event
                with engine.pipeline() as pipe:
                    for number, event in enumerate(
                        read_events(_open_lines(events, buffered), source=source), start=1
                    ):
                        event_id = event.event_id
                        try:
                            outcome = pipe.process(event)
                        except LedgerError as exc:
                            problem = {"event": number, "event_id": event_id, "error": str(exc)}
                            if on_error == "stop":
                                stopped = problem
                                break
                            rejected.append(problem)
                        else:
                            if outcome.replayed:
                                replayed += 1
                            else:
                                applied += 1
                        if number % 64 == 0 or number == total:
                            seconds = time.perf_counter() - start
                            bar.update(task, completed=number, rate=f"{number / seconds:,.0f} ev/s")
            except StoreError as exc:
                # at an event's commit, or at the end (the last event's fsync): stop there
                stopped = {"event": number, "event_id": event_id, "error": str(exc)}
    seconds = time.perf_counter() - start
    summary = {
        "db": _safe_db(db),
        "events": total,
        "applied": applied,
        "already_recorded": replayed,
        "rejected": len(rejected),
        "rejections": rejected[:20],
        "stopped_at": stopped,
        "seconds": round(seconds, 3),
        "events_per_second": round((applied + replayed) / seconds, 1) if seconds > 0 else None,
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"{applied} event(s) applied, {replayed} already recorded, {len(rejected)} rejected "
            f"of {total} in {seconds:.1f} s",
            highlight=False,
        )
        for problem in rejected[:20]:
            err_console.print(f"rejected: {problem['error']}", highlight=False, markup=False)
    if stopped is not None:
        raise fail(
            f"stopped at event #{stopped['event']} ({stopped['event_id']!r}): {stopped['error']}\n"
            f"the {applied + replayed} event(s) before it are recorded; fix the cause and run "
            "the same command again to resume (or pass --on-error skip)"
        )
    if rejected:
        raise typer.Exit(1)


def _safe_db(db: str) -> str:
    if not _is_url(db):
        return db
    from loyaltykit.engine.stores import _hide_password

    return _hide_password(db)


# --------------------------------------------------------------------------------------------
# balance and statement
# --------------------------------------------------------------------------------------------


@app.command("balance")
def balance_command(
    member: Annotated[str, typer.Argument(help="The member id.", show_default=False)],
    db: DbOption,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="ISO 8601 time with offset (default: now).", show_default=False
        ),
    ] = None,
    expiring_within_days: Annotated[
        int,
        typer.Option(
            "--expiring-within-days", min=0, help="Window of the 'expiring' figure, in days."
        ),
    ] = 30,
    as_json: JsonOption = False,
) -> None:
    """A member's points as of a time: total, available, pending, overdue, debt and expiring."""
    from loyaltykit.engine import Engine

    when = _parse_time(as_of, "--as-of")
    with _store(db, write=False) as store:
        engine = Engine(_reader(), store, migrate=False)
        try:
            balance = engine.balance(member, when, expiring_within_days=expiring_within_days)
        except LoyaltyKitError as exc:
            raise fail(exc) from None
    data = balance.to_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=f"balance of {member} as of {data['as_of']}")
    table.add_column("figure")
    table.add_column("points", justify="right")
    for key in ("total", "available", "pending", "overdue", "debt"):
        table.add_row(key, str(data[key]))
    table.add_row(f"expiring within {expiring_within_days} days", str(data["expiring"]))
    console.print(table)


@app.command("statement")
def statement_command(
    member: Annotated[str, typer.Argument(help="The member id.", show_default=False)],
    db: DbOption,
    start: Annotated[
        str | None,
        typer.Option("--start", help="First instant (ISO 8601 with offset).", show_default=False),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="Last instant (ISO 8601 with offset).", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A member's ledger entries with running balances, and their tier history."""
    from loyaltykit.engine import Engine

    first, last = _parse_time(start, "--start"), _parse_time(end, "--end")
    with _store(db, write=False) as store:
        engine = Engine(_reader(), store, migrate=False)
        try:
            statement = engine.statement(member, start=first, end=last)
        except LoyaltyKitError as exc:
            raise fail(exc) from None
    data = statement.to_dict()
    if as_json:
        print_json(data)
        return
    table = Table(
        title=f"statement of {member} (tier {data['tier'] or '-'}): opening "
        f"{data['opening_balance']}, closing {data['closing_balance']}"
    )
    for column in ("time", "kind", "points", "balance", "batch", "event", "note"):
        table.add_column(column, justify="right" if column in ("points", "balance") else "left")
    for line in data["lines"]:
        note = line["reason"] or ", ".join(f"{k}={v}" for k, v in line["meta"].items())
        table.add_row(
            line["occurred_at"],
            line["kind"],
            str(line["points"]),
            str(line["balance"]),
            line["batch_id"] or "",
            line["event_id"],
            note,
        )
    console.print(table)
    if data["tier_history"]:
        tiers = Table(title="tier history")
        for column in ("time", "from", "to", "reason"):
            tiers.add_column(column)
        for change in data["tier_history"]:
            tiers.add_row(
                change["occurred_at"],
                change["from_tier"] or "-",
                change["to_tier"],
                change["reason"],
            )
        console.print(tiers)


# --------------------------------------------------------------------------------------------
# redeem and expire
# --------------------------------------------------------------------------------------------


@app.command("redeem")
def redeem_command(
    program: ProgramArg,
    member: Annotated[str, typer.Argument(help="The member id.", show_default=False)],
    db: DbOption,
    event_id: Annotated[
        str,
        typer.Option(
            "--event-id",
            help="Idempotency key: running the command again with the same id changes nothing.",
            show_default=False,
        ),
    ],
    reward: Annotated[
        str | None,
        typer.Option("--reward", help="Catalogue reward to issue.", show_default=False),
    ] = None,
    points: Annotated[
        int | None,
        typer.Option(
            "--points", min=1, help="Points to spend (instead of --reward).", show_default=False
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Business time, ISO 8601 with offset (default: now).", show_default=False
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Note kept on the entries.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Spend a member's points on a reward or a number of points (soonest-expiring first)."""
    from loyaltykit.engine import Engine

    if (reward is None) == (points is None):
        raise fail("give exactly one of --reward ID or --points N")
    when = _parse_time(at, "--at") or dt.datetime.now(dt.UTC)
    prog = _program(program)
    with _store(db, write=True) as store:
        engine = Engine(prog, store, migrate=False)
        try:
            outcome = engine.redeem(
                member, at=when, event_id=event_id, reward_id=reward, points=points, reason=reason
            )
            balance = engine.balance(member, when)
        except LoyaltyKitError as exc:
            raise fail(exc) from None
    data = {**outcome.to_dict(), "replayed": outcome.replayed, "balance": balance.to_dict()}
    if as_json:
        print_json(data)
        return
    what = f"reward {reward}" if reward else f"{points} points"
    again = " (already recorded earlier; nothing changed)" if outcome.replayed else ""
    console.print(
        f"{member}: redeemed {what} for {-outcome.points} points{again}; "
        f"available now {balance.available}",
        highlight=False,
    )


@app.command("expire")
def expire_command(
    program: ProgramArg,
    db: DbOption,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Expire what is due by this time (default: now).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Expire every batch due by a time (one transaction per member); safe to re-run."""
    from loyaltykit.engine import Engine

    when = _parse_time(as_of, "--as-of") or dt.datetime.now(dt.UTC)
    prog = _program(program)
    with _store(db, write=True) as store:
        engine = Engine(prog, store, migrate=False)
        try:
            report = engine.expire(when)
        except LoyaltyKitError as exc:
            raise fail(exc) from None
    data = report.to_dict()
    if as_json:
        print_json(data)
        return
    console.print(
        f"expired {data['points']} points of {data['members']} member(s) as of {data['as_of']}",
        highlight=False,
    )
