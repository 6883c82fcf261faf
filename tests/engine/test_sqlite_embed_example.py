"""The embedding example (``examples/embed/loyalty_service.py``) on a SQLite ledger: its routes,
retries, conflicts, concurrent requests from many threads, and a real HTTP round trip."""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from loyaltykit.engine import Engine, load_program
from loyaltykit.engine.stores import SQLiteStore
from loyaltykit.plugins import PluginHost

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loyalty_service", EXAMPLE / "loyalty_service.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


service = _load()


@pytest.fixture
def engine(tmp_path: Path, plugin_host: PluginHost) -> Iterator[Engine]:
    store = SQLiteStore(tmp_path / "ledger.db", synchronous="normal")
    engine = Engine(load_program(EXAMPLE / "program.toml"), store, host=plugin_host)
    yield engine
    store.close()


Call = Callable[..., tuple[str, Any]]


@pytest.fixture
def call(engine: Engine) -> Call:
    app = service.create_app(engine)

    def call(method: str, path: str, body: Any = None, query: str = "") -> tuple[str, Any]:
        data = (
            b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
        )
        seen: dict[str, str] = {}
        chunks = app(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_LENGTH": str(len(data)),
                "wsgi.input": io.BytesIO(data),
            },
            lambda status, headers: seen.update(status=status),
        )
        return seen["status"], json.loads(b"".join(chunks))

    return call


NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def at(minutes: int = 0) -> str:
    """An ISO time ``minutes`` after a day ago (the service redeems and reports as of now)."""
    return (NOW - dt.timedelta(days=1) + dt.timedelta(minutes=minutes)).isoformat()


def purchase(event_id: str, member: str, amount: str, when: str | None = None) -> dict[str, str]:
    return {
        "type": "purchase",
        "event_id": event_id,
        "member_id": member,
        "occurred_at": when or at(),
        "transaction_id": event_id,
        "amount": amount,
    }


def test_routes_retries_and_conflicts(call: Call) -> None:
    status, body = call("POST", "/events", purchase("o-1", "ann", "45.50"))
    assert status == "201 Created"
    assert body["points"] == 455  # 10 points per dollar, auto-enrolled
    assert call("POST", "/events", purchase("o-1", "ann", "45.50")) == (
        "200 OK",
        {**body, "replayed": True},
    )
    status, body = call("POST", "/events", purchase("o-1", "ann", "99.00"))
    assert status == "409 Conflict"
    assert "different payload" in body["error"]
    status, body = call(
        "POST",
        "/members/ann/redeem",
        {"event_id": "web-1", "occurred_at": at(5), "reward_id": "latte"},
    )
    assert status == "201 Created"
    assert body["points"] == -400
    assert (
        call(
            "POST",
            "/members/ann/redeem",
            {"event_id": "web-1", "occurred_at": at(5), "reward_id": "latte"},
        )[0]
        == "200 OK"
    )
    status, body = call(
        "POST",
        "/members/ann/redeem",
        {"event_id": "web-2", "occurred_at": at(6), "reward_id": "latte"},
    )
    assert status == "422 Unprocessable Entity"
    assert "needed" in body["error"]
    status, balance = call("GET", "/members/ann/balance")
    assert (status, balance["available"]) == ("200 OK", 55)
    status, statement = call("GET", "/members/ann/statement", query="end=2030-01-01T00:00:00Z")
    assert status == "200 OK"
    assert [line["kind"] for line in statement["lines"]] == ["earn", "redeem"]
    status, report = call(
        "POST", "/admin/expire", {"as_of": (NOW + dt.timedelta(days=800)).isoformat()}
    )
    assert (status, report["points"]) == ("200 OK", 55)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/events", "{oops", "422 Unprocessable Entity", "not valid JSON"),
        ("POST", "/events", {"type": "purchase"}, "422 Unprocessable Entity", "is required"),
        ("POST", "/members/ann/redeem", {"points": 5}, "400 Bad Request", "event_id"),
        ("POST", "/members/ann/redeem", {"event_id": "x"}, "400 Bad Request", "occurred_at"),
        ("POST", "/members/ann/redeem", "[1]", "400 Bad Request", "JSON object"),
        ("GET", "/members/nobody/balance", None, "422 Unprocessable Entity", "not enrolled"),
        ("GET", "/nowhere", None, "404 Not Found", "no route"),
    ],
)
def test_bad_requests_write_nothing(
    call: Call, engine: Engine, method: str, path: str, body: Any, status: str, message: str
) -> None:
    got, payload = call(method, path, body)
    assert got == status
    assert message in payload["error"]
    assert engine.store.member_ids() == []


def test_concurrent_requests_from_many_threads(call: Call, engine: Engine) -> None:
    """Twelve threads post the same 60 purchases (each one retried by everyone) and try to
    redeem lattes: every purchase counts once and nobody is overdrawn."""
    members = ["ann", "bob", "cyd"]
    orders = [purchase(f"o-{k}", members[k % 3], "9.00", at(k)) for k in range(60)]
    statuses: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        for k, order in enumerate(orders[i % 7 :] + orders[: i % 7]):
            status, _ = call("POST", "/events", order)
            with lock:
                statuses.append(status)
            if k % 10 == 0:
                call(
                    "POST",
                    f"/members/{members[i % 3]}/redeem",
                    {"event_id": f"t{i}-{k}", "occurred_at": at(k), "reward_id": "latte"},
                )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count("201 Created") == 60
    assert statuses.count("200 OK") == 60 * 11
    for member in members:
        entries = engine.store.entries(member)
        earned = sum(e.points for e in entries if e.points > 0)
        assert earned == 20 * 90
        running = 0
        for e in entries:
            running += e.points
            assert running >= 0


def test_served_over_http(engine: Engine) -> None:
    from wsgiref.simple_server import make_server

    with make_server(
        "127.0.0.1", 0, service.create_app(engine), service.ThreadingWSGIServer
    ) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            request = urllib.request.Request(
                f"{base}/events",
                data=json.dumps(purchase("h-1", "dee", "12.30")).encode(),
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
                assert json.loads(response.read())["points"] == 123
            with urllib.request.urlopen(f"{base}/members/dee/balance", timeout=30) as response:
                assert json.loads(response.read())["available"] == 123
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(f"{base}/members/zed/balance", timeout=30)
            assert info.value.code == 422
        finally:
            server.shutdown()
            thread.join(timeout=30)


def test_main_reports_a_bad_store(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown scheme 'mysql'"):
        service.main(["--db", "mysql://x/y", "--port", "0"])
