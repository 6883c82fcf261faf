"""A small loyalty service: the loyaltykit engine embedded in a WSGI app (standard library only).

Run it::

    python examples/embed/loyalty_service.py --db ledger.db                 # SQLite file
    python examples/embed/loyalty_service.py --db postgresql://user@host/db # PostgreSQL

Endpoints (JSON in, JSON out):

* ``POST /events`` - one event (``{"type": "purchase", "event_id": ..., ...}``, the JSON-lines
  format of :mod:`loyaltykit.engine.events`). ``201`` when applied, ``200`` when the event id was
  already recorded (a retry: same outcome, nothing written), ``409`` when the id was used with
  another payload, ``422`` when the event is invalid or refused (not enough points ...).
* ``POST /members/<id>/redeem`` - ``{"event_id": ..., "occurred_at": ..., "reward_id": ...}``
  (or ``"points": N`` instead of ``reward_id``): spend points. A retry must resend the same
  body, time included; the event id then returns the first outcome.
* ``GET /members/<id>/balance`` and ``GET /members/<id>/statement`` (``?as_of=`` / ``?start=``
  ``&end=``, ISO 8601 times with an offset).
* ``POST /admin/expire`` - ``{"as_of": ...}`` (default now): expire what is due; run it from a
  scheduler.

The server is threaded: one engine object serves every request thread. The SQLite store gives
each thread its own connection and serialises writes with ``BEGIN IMMEDIATE``; the PostgreSQL
store draws connections from its pool and locks one member row per event. Event hooks run after
each commit, so a plugin that sends e-mails never announces points that were rolled back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIServer, make_server

from loyaltykit.engine import Engine, event_from_json, load_program
from loyaltykit.engine.stores import open_store
from loyaltykit.errors import IdempotencyConflictError, LedgerError, LoyaltyKitError

HERE = Path(__file__).resolve().parent
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class HTTPError(Exception):
    """An error answered with ``status`` and a JSON body ``{"error": message}``."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _time(query: dict[str, list[str]], key: str) -> dt.datetime | None:
    values = query.get(key)
    if not values:
        return None
    try:
        value = dt.datetime.fromisoformat(values[0].replace("Z", "+00:00"))
    except ValueError:
        raise HTTPError("400 Bad Request", f"{key}={values[0]!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise HTTPError("400 Bad Request", f"{key}={values[0]!r} needs a UTC offset")
    return value


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    size = int(environ.get("CONTENT_LENGTH") or 0)
    text = environ["wsgi.input"].read(size).decode("utf-8") if size else "{}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HTTPError("400 Bad Request", f"the body is not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise HTTPError("400 Bad Request", "the body must be a JSON object")
    return data


def create_app(engine: Engine) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application serving ``engine``."""

    def route(environ: dict[str, Any]) -> tuple[str, Any]:
        method = environ["REQUEST_METHOD"]
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        query = parse_qs(environ.get("QUERY_STRING", ""))

        if method == "POST" and parts == ["events"]:
            size = int(environ.get("CONTENT_LENGTH") or 0)
            line = environ["wsgi.input"].read(size).decode("utf-8")
            outcome = engine.process(event_from_json(line, where="request body"))
            return ("200 OK" if outcome.replayed else "201 Created"), {
                **outcome.to_dict(),
                "replayed": outcome.replayed,
            }

        if len(parts) == 3 and parts[0] == "members":
            member = parts[1]
            if method == "GET" and parts[2] == "balance":
                return "200 OK", engine.balance(member, _time(query, "as_of")).to_dict()
            if method == "GET" and parts[2] == "statement":
                statement = engine.statement(
                    member, start=_time(query, "start"), end=_time(query, "end")
                )
                return "200 OK", statement.to_dict()
            if method == "POST" and parts[2] == "redeem":
                body = _body(environ)
                if not isinstance(body.get("event_id"), str):
                    raise HTTPError("400 Bad Request", 'give an "event_id" (string)')
                when = _time({"occurred_at": [str(body.get("occurred_at", ""))]}, "occurred_at")
                if when is None:
                    raise HTTPError(
                        "400 Bad Request",
                        'give "occurred_at" (ISO 8601 with offset) and resend the same body, '
                        "time included, when you retry",
                    )
                outcome = engine.redeem(
                    member,
                    at=when,
                    event_id=body["event_id"],
                    reward_id=body.get("reward_id"),
                    points=body.get("points"),
                )
                return ("200 OK" if outcome.replayed else "201 Created"), {
                    **outcome.to_dict(),
                    "replayed": outcome.replayed,
                }

        if method == "POST" and parts == ["admin", "expire"]:
            body = _body(environ)
            as_of = _time({"as_of": [body["as_of"]]} if "as_of" in body else {}, "as_of")
            return "200 OK", engine.expire(as_of or dt.datetime.now(dt.UTC)).to_dict()

        raise HTTPError("404 Not Found", f"no route for {method} {environ.get('PATH_INFO')}")

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, payload = route(environ)
        except HTTPError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except IdempotencyConflictError as exc:
            status, payload = "409 Conflict", {"error": str(exc)}
        except LedgerError as exc:  # a malformed or refused event; nothing was written
            status, payload = "422 Unprocessable Entity", {"error": str(exc)}
        except LoyaltyKitError as exc:  # invalid values (e.g. redeem points = 0)
            status, payload = "422 Unprocessable Entity", {"error": str(exc)}
        data = json.dumps(payload, default=str).encode("utf-8")
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    return app


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """The standard library's WSGI server, one thread per request."""

    daemon_threads = True


def main(argv: list[str] | None = None) -> None:
    """Serve the example program on ``--db`` until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="ledger.db", help="SQLite file or postgresql:// URL")
    parser.add_argument("--program", default=str(HERE / "program.toml"), help="program TOML")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        engine = Engine(load_program(args.program), open_store(args.db))
    except LoyaltyKitError as exc:
        sys.exit(f"error: {exc}")
    with make_server(args.host, args.port, create_app(engine), ThreadingWSGIServer) as server:
        print(f"loyalty service on http://{args.host}:{server.server_port}/ (ledger: {args.db})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            engine.store.close()


if __name__ == "__main__":
    main()
