"""The example third-party plugin ``loyaltykit-engagement``.

Two groups of tests:

* discovery through the ``loyaltykit`` entry point, end to end (a host loading entry points, the
  ``loyaltykit plugins`` command in a subprocess, the environment switches). They need the
  distribution installed (``pip install -e plugins/loyaltykit-engagement``, as CI does) and skip,
  saying so, when it is not;
* its behaviour (scoring model, event hooks, outbox), with the plugin registered by hand on the
  ``plugin_host`` fixture so that nothing depends on what is installed.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyaltykit import LedgerEntry, RewardIssue, TierChange
from loyaltykit.datasets import generate
from loyaltykit.errors import InvalidValueError, ModelInputError, NotFittedError, PluginError
from loyaltykit.plugins import (
    BLOCKED_PLUGINS_ENV,
    DISABLE_AUTOLOAD_ENV,
    PluginHost,
)
from loyaltykit.protocols import ScoringModel

engagement = pytest.importorskip(
    "loyaltykit_engagement",
    reason="the example plugin is not importable: pip install -e plugins/loyaltykit-engagement",
)
EngagementModel = engagement.EngagementModel
EngagementPlugin = engagement.EngagementPlugin
Outbox = engagement.Outbox


def _installed() -> bool:
    try:
        importlib.metadata.distribution("loyaltykit-engagement")
    except importlib.metadata.PackageNotFoundError:
        return False
    return any(
        ep.name == "engagement" for ep in importlib.metadata.entry_points(group="loyaltykit")
    )


needs_dist = pytest.mark.skipif(
    not _installed(),
    reason="the distribution loyaltykit-engagement is not installed with its entry point; "
    "run `pip install -e plugins/loyaltykit-engagement` (CI does)",
)

T0 = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# discovery through the entry point
# --------------------------------------------------------------------------------------------


@needs_dist
def test_host_loading_entry_points_finds_the_plugin() -> None:
    host = PluginHost(load_entrypoints=True, blocked=frozenset())
    infos = {info.name: info for info in host.plugins()}
    assert "engagement" in infos
    info = infos["engagement"]
    assert info.source.startswith("entry point (loyaltykit-engagement ")
    assert not info.builtin
    assert ("scoring_model", "engagement") in info.provides
    assert "loyaltykit_tier_changed" in info.hooks
    entry = host.scoring_models.get("engagement")
    assert entry.plugin == "engagement"
    assert entry.factory is EngagementModel


@needs_dist
def test_autoload_switch_and_block_list_keep_it_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, "1")
    assert "engagement" not in {i.name for i in PluginHost().plugins()}
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    assert "engagement" in {i.name for i in PluginHost().plugins()}
    monkeypatch.setenv(BLOCKED_PLUGINS_ENV, "something-else, engagement")
    host = PluginHost()
    assert "engagement" not in {i.name for i in host.plugins()}
    assert "engagement" not in host.scoring_models
    with pytest.raises(PluginError, match="blocked"):
        host.register(engagement, name="engagement")


def _cli(env_changes: dict[str, str | None]) -> list[dict[str, Any]]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run(
        [sys.executable, "-m", "loyaltykit", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed: list[dict[str, Any]] = json.loads(done.stdout)
    return listed


@needs_dist
def test_cli_lists_the_plugin_and_the_switches_remove_it() -> None:
    listed = {p["name"]: p for p in _cli({DISABLE_AUTOLOAD_ENV: None, BLOCKED_PLUGINS_ENV: None})}
    assert "engagement" in listed
    assert listed["engagement"]["source"].startswith("entry point (loyaltykit-engagement")
    assert {"kind": "scoring_model", "name": "engagement"} in listed["engagement"]["provides"]
    disabled = _cli({DISABLE_AUTOLOAD_ENV: "1", BLOCKED_PLUGINS_ENV: None})
    assert "engagement" not in {p["name"] for p in disabled}
    blocked = _cli({DISABLE_AUTOLOAD_ENV: None, BLOCKED_PLUGINS_ENV: "engagement"})
    assert "engagement" not in {p["name"] for p in blocked}


@needs_dist
def test_entry_point_module_writes_to_the_env_outbox_file(tmp_path: Path) -> None:
    """The module-level plugin (what the entry point loads) honours LOYALTYKIT_ENGAGEMENT_OUTBOX."""
    outbox_file = tmp_path / "out" / "outbox.jsonl"
    code = (
        "import datetime as dt\n"
        "from loyaltykit import TierChange\n"
        "from loyaltykit.plugins import PluginHost\n"
        "host = PluginHost(load_entrypoints=True, blocked=frozenset())\n"
        "host.hook.loyaltykit_tier_changed(change=TierChange(member_id='m1', event_id='e1',"
        " from_tier='silver', to_tier='gold', occurred_at=dt.datetime(2024, 1, 1,"
        " tzinfo=dt.UTC), reason='qualified'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != DISABLE_AUTOLOAD_ENV}
    env[engagement.OUTBOX_ENV] = str(outbox_file)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    (record,) = Outbox.read(outbox_file)
    assert record["kind"] == "tier_upgrade"
    assert record["member_id"] == "m1"
    assert record["occurred_at"] == "2024-01-01T00:00:00+00:00"


# --------------------------------------------------------------------------------------------
# registered by hand: registry and event hooks
# --------------------------------------------------------------------------------------------


def test_registers_the_engagement_scoring_model(plugin_host: PluginHost) -> None:
    plugin_host.register(EngagementPlugin(), name="engagement-test")
    entry = plugin_host.scoring_models.get("engagement")
    assert entry.plugin == "engagement-test"
    assert entry.description
    model = plugin_host.scoring_models.create("engagement", half_life_days=7)
    assert isinstance(model, EngagementModel)
    assert isinstance(model, ScoringModel)
    assert model.half_life_days == 7


def _change(reason: str, from_tier: str | None, to_tier: str = "gold") -> TierChange:
    return TierChange(
        member_id="m1",
        event_id=f"ev-{reason}",
        from_tier=from_tier,
        to_tier=to_tier,
        occurred_at=T0,
        reason=reason,
    )


def test_tier_changes_become_notifications(plugin_host: PluginHost) -> None:
    outbox = Outbox()
    plugin_host.register(EngagementPlugin(outbox), name="engagement-test")
    hook = plugin_host.hook
    hook.loyaltykit_tier_changed(change=_change("qualified", "silver"))
    hook.loyaltykit_tier_changed(change=_change("downgrade", "gold", "silver"))
    hook.loyaltykit_tier_changed(change=_change("qualified", None, "bronze"))
    hook.loyaltykit_tier_changed(change=_change("manual", "bronze", "gold"))
    kinds = [n.kind for n in outbox.notifications]
    assert kinds == ["tier_upgrade", "tier_downgrade", "welcome", "tier_changed"]
    first = outbox.notifications[0]
    assert first.member_id == "m1"
    assert first.event_id == "ev-qualified"
    assert "gold" in first.subject
    assert first.data == {"from_tier": "silver", "to_tier": "gold", "reason": "qualified"}
    assert len(outbox.drain()) == 4
    assert len(outbox) == 0


def _expire(points: int, batch: str, day: int) -> LedgerEntry:
    return LedgerEntry(
        id=f"x-{batch}",
        member_id="m2",
        event_id="expiry-run-1",
        kind="expire",
        points=points,
        occurred_at=T0 + dt.timedelta(days=day),
        batch_id=batch,
    )


def test_expired_points_and_rewards_become_notifications(
    plugin_host: PluginHost, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = Outbox(path)
    plugin_host.register(EngagementPlugin(outbox), name="engagement-test")
    plugin_host.hook.loyaltykit_points_expired(
        member_id="m2", entries=[_expire(-120, "b1", 0), _expire(-30, "b2", 1)]
    )
    plugin_host.hook.loyaltykit_points_expired(member_id="m2", entries=[])  # nothing expired
    plugin_host.hook.loyaltykit_reward_issued(
        issue=RewardIssue(
            member_id="m3",
            event_id="redeem-9",
            reward_id="coffee",
            points=250,
            occurred_at=T0,
            valid_until=T0 + dt.timedelta(days=30),
        )
    )
    expired, reward = outbox.notifications
    assert expired.kind == "points_expired"
    assert expired.data["points"] == 150
    assert expired.subject == "150 points expired"
    assert expired.occurred_at == T0 + dt.timedelta(days=1)
    assert reward.kind == "reward_issued"
    assert "coffee" in reward.body
    assert "2024-07-01" in reward.body
    on_disk = Outbox.read(path)
    assert [r["kind"] for r in on_disk] == ["points_expired", "reward_issued"]
    assert on_disk[0]["data"] == {"points": 150, "batches": ["b1", "b2"]}
    # drain empties memory, not the file
    outbox.drain()
    assert len(Outbox.read(path)) == 2


def test_module_and_object_plugins_cannot_both_register_the_model(
    plugin_host: PluginHost,
) -> None:
    plugin_host.register(EngagementPlugin(), name="one")
    plugin_host.register(engagement, name="two")
    with pytest.raises(PluginError, match="'engagement' is registered twice"):
        _ = plugin_host.scoring_models


# --------------------------------------------------------------------------------------------
# the scoring model
# --------------------------------------------------------------------------------------------


def _events(rows: list[tuple[str, float, str]]) -> pl.DataFrame:
    """Events from (customer, days before T0, type)."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "occurred_at": [T0 - dt.timedelta(days=r[1]) for r in rows],
            "type": [r[2] for r in rows],
        },
        schema={
            "customer_id": pl.String,
            "occurred_at": pl.Datetime("us", "UTC"),
            "type": pl.String,
        },
    )


def test_intensity_is_the_decayed_weighted_count() -> None:
    events = _events(
        [
            ("a", 0, "purchase"),
            ("a", 30, "visit"),
            ("a", 60, "email_open"),
            ("a", -5, "purchase"),  # after as_of: ignored
            ("b", 10, "unknown-type"),
        ]
    )
    features = engagement.engagement_features(events, as_of=T0, half_life_days=30)
    a, b = features.iter_rows(named=True)
    assert a["customer_id"] == "a"
    assert a["events"] == 3
    assert a["engagement_intensity"] == pytest.approx(3.0 + 1.0 * 0.5 + 0.5 * 0.25)
    assert a["last_engaged_at"] == T0
    assert a["days_since_engaged"] == 0
    assert b["engagement_intensity"] == pytest.approx(0.5 * 2 ** (-10 / 30))
    assert b["days_since_engaged"] == pytest.approx(10)


def test_score_keeps_rows_and_order_and_handles_unknown_customers() -> None:
    events = _events(
        [("a", 1, "purchase"), ("b", 40, "visit"), ("c", 200, "purchase"), ("d", 5, "visit")]
    )
    model = EngagementModel(as_of=T0, dormant_after_days=90).fit(events)
    customers = pl.DataFrame({"customer_id": ["z", "c", "a", "b", "d"], "x": [1, 2, 3, 4, 5]})
    scored = model.score(customers)
    assert scored["customer_id"].to_list() == ["z", "c", "a", "b", "d"]
    assert scored["x"].to_list() == [1, 2, 3, 4, 5]
    rows = {r["customer_id"]: r for r in scored.iter_rows(named=True)}
    assert rows["z"]["engagement_score"] == 0
    assert rows["z"]["engagement_intensity"] == 0.0
    assert rows["z"]["engagement_level"] == "dormant"
    assert rows["z"]["last_engaged_at"] is None
    assert rows["c"]["engagement_level"] == "dormant"  # 200 days ago
    assert rows["a"]["engagement_score"] == 100  # the most engaged
    assert rows["a"]["engagement_level"] == "high"
    assert scored.schema["engagement_level"] == pl.Enum(["dormant", "low", "medium", "high"])
    assert model.as_of_ == T0


def test_as_of_defaults_to_the_latest_event_and_lazy_equals_eager() -> None:
    data = generate(3000, seed=11, with_feedback=False)
    events = engagement.engagement_events(data.interactions, data.transactions)
    eager = EngagementModel().fit(events)
    lazy = EngagementModel().fit(events.lazy())
    assert eager.as_of_ == events["occurred_at"].max()
    assert eager.percentiles_ == lazy.percentiles_
    out_lazy = lazy.score(data.customers.lazy())
    assert isinstance(out_lazy, pl.LazyFrame)
    assert out_lazy.collect().equals(eager.score(data.customers))
    lazy_events = engagement.engagement_events(data.interactions.lazy(), data.transactions.lazy())
    assert isinstance(lazy_events, pl.LazyFrame)
    assert lazy_events.collect().equals(events)


def test_engagement_tracks_the_synthetic_truth() -> None:
    """On synthetic data, engaged customers are the ones still alive and buying often."""
    data = generate(20_000, seed=5)
    events = engagement.engagement_events(data.interactions, data.transactions)
    scored = EngagementModel().fit(events).score(data.customers).join(data.truth, on="customer_id")
    by_level = dict(
        scored.filter(~pl.col("is_prospect"))
        .group_by("engagement_level")
        .agg(pl.col("alive_at_end").mean())
        .iter_rows()
    )
    assert by_level["high"] > by_level["dormant"] + 0.2
    rank_corr = (
        scored.filter(pl.col("alive_at_end"))
        .select(pl.corr("engagement_intensity", "lambda_per_day", method="spearman"))
        .item()
    )
    assert rank_corr > 0.3


@given(
    ages=st.lists(
        st.tuples(
            st.sampled_from("abcdefgh"),
            st.floats(0, 400),
            st.sampled_from(["purchase", "visit", "email_open", "complaint", "other"]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_score_is_monotone_in_intensity_and_bounded(ages: list[tuple[str, float, str]]) -> None:
    model = EngagementModel(as_of=T0).fit(_events(ages))
    scored = model.score(pl.DataFrame({"customer_id": list("abcdefghz")}))
    assert scored["engagement_score"].is_between(0, 100).all()
    ordered = scored.sort("engagement_intensity")
    assert ordered["engagement_score"].is_sorted()
    assert scored["engagement_score"].max() == 100
    dormant = scored["days_since_engaged"].is_null() | (scored["days_since_engaged"] > 90)
    assert ((scored["engagement_level"] == "dormant") == dormant).all()
    assert all(math.isfinite(x) for x in scored["engagement_intensity"])


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_model_errors() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        EngagementModel().score(pl.DataFrame({"customer_id": ["a"]}))
    with pytest.raises(InvalidValueError, match="half_life_days"):
        EngagementModel(half_life_days=0)
    with pytest.raises(InvalidValueError, match="as_of"):
        EngagementModel(as_of=dt.datetime(2024, 1, 1))
    with pytest.raises(InvalidValueError, match=r"weights\['visit'\]"):
        EngagementModel(weights={"visit": -1.0})
    with pytest.raises(InvalidValueError, match="default_weight"):
        EngagementModel(default_weight=float("nan"))
    with pytest.raises(ModelInputError, match="empty"):
        EngagementModel().fit(_events([]))
    with pytest.raises(ModelInputError, match="no event at or before"):
        EngagementModel(as_of=T0 - dt.timedelta(days=30)).fit(_events([("a", 1, "visit")]))
    with pytest.raises(ModelInputError, match="lack column"):
        EngagementModel().fit(pl.DataFrame({"customer_id": ["a"], "occurred_at": [T0]}))
    model = EngagementModel().fit(_events([("a", 1, "visit")]))
    with pytest.raises(ModelInputError, match="customer_id"):
        model.score(pl.DataFrame({"id": ["a"]}))
    with pytest.raises(ModelInputError, match="give interactions"):
        engagement.engagement_events()
    with pytest.raises(ModelInputError, match="both be DataFrames or both"):
        engagement.engagement_events(_events([]), _events([]).lazy())


# --------------------------------------------------------------------------------------------
# with the program engine
# --------------------------------------------------------------------------------------------


def test_engine_events_reach_the_outbox(plugin_host: PluginHost) -> None:
    """A real engine run: enrolment, an upgrade, expiry and a downgrade become notifications."""
    from loyaltykit import Engine, MemoryStore, Program, Tier, TierPolicy
    from loyaltykit.core.program import ExpiryPolicy
    from loyaltykit.engine import PerUnit, WindowedMetric

    outbox = Outbox()
    plugin_host.register(EngagementPlugin(outbox), name="engagement-test")
    program = Program(
        name="expiring",
        earning=[PerUnit(name="base", points_per_unit=1)],
        expiry=ExpiryPolicy(kind="end_of_month", months=0),
        tiers=TierPolicy(
            rule=WindowedMetric(metric="spend", window="rolling", window_days=90),
            levels=[Tier(name="member", threshold=0), Tier(name="vip", threshold=100)],
            grace_days=7,
        ),
    )
    engine = Engine(program, MemoryStore(), host=plugin_host)
    t = dt.datetime(2025, 1, 10, tzinfo=dt.UTC)
    engine.enroll("ann", at=t, event_id="e1")
    engine.purchase("ann", "120", at=t, event_id="e2", transaction_id="o1")
    engine.expire(dt.datetime(2025, 2, 1, tzinfo=dt.UTC))
    engine.retier(dt.datetime(2025, 4, 17, tzinfo=dt.UTC))
    notes = outbox.notifications
    assert [n.kind for n in notes] == [
        "welcome",
        "tier_upgrade",
        "points_expired",
        "tier_downgrade",
    ]
    assert all(n.member_id == "ann" for n in notes)
    assert notes[2].data["points"] == 120
    assert notes[3].data["to_tier"] == "member"
    # replaying an event fires nothing again
    engine.purchase("ann", "120", at=t, event_id="e2", transaction_id="o1")
    assert len(outbox) == 4
