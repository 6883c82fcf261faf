"""The plugin's own tests, as a third-party author would keep them next to the package.

They use only public loyaltykit API: a private :class:`~loyaltykit.plugins.PluginHost` that does
not load entry points, with the plugin registered by hand. Run them with
``pytest plugins/loyaltykit-engagement/tests``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from loyaltykit_engagement import EngagementModel, EngagementPlugin, Outbox, engagement_events

from loyaltykit import TierChange
from loyaltykit.plugins import PluginHost
from loyaltykit.protocols import ScoringModel

NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@pytest.fixture
def host() -> PluginHost:
    """A host with the built-ins and nothing installed, so the test sees only this plugin."""
    return PluginHost(load_entrypoints=False, blocked=frozenset())


def test_plugin_provides_the_model_and_the_hooks(host: PluginHost) -> None:
    outbox = Outbox()
    host.register(EngagementPlugin(outbox), name="engagement")
    model = host.scoring_models.create("engagement")
    assert isinstance(model, ScoringModel)
    host.hook.loyaltykit_tier_changed(
        change=TierChange(
            member_id="m",
            event_id="e",
            from_tier="silver",
            to_tier="gold",
            occurred_at=NOW,
            reason="qualified",
        )
    )
    assert [n.kind for n in outbox.notifications] == ["tier_upgrade"]


def test_model_ranks_the_busier_customer_higher() -> None:
    interactions = pl.DataFrame(
        {
            "customer_id": ["busy", "busy", "busy", "quiet"],
            "occurred_at": [NOW - dt.timedelta(days=d) for d in (1, 3, 8, 20)],
            "channel": ["app", "app", "email", "email"],
            "type": ["visit", "visit", "email_open", "email_open"],
        },
        schema_overrides={"occurred_at": pl.Datetime("us", "UTC")},
    )
    events = engagement_events(interactions=interactions)
    scored = (
        EngagementModel(as_of=NOW)
        .fit(events)
        .score(pl.DataFrame({"customer_id": ["quiet", "busy"]}))
    )
    quiet, busy = scored["engagement_score"].to_list()
    assert busy > quiet
