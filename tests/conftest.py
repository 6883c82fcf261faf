"""Shared fixtures and the hypothesis settings profiles."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from loyaltykit.plugins import PluginHost, use_host

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def plugin_host() -> Iterator[PluginHost]:
    """A fresh plugin host with the built-ins only, installed as the process-wide host.

    Entry points are not loaded, so tests do not depend on what happens to be installed;
    register test plugins with ``plugin_host.register(...)``.
    """
    host = PluginHost(load_entrypoints=False, blocked=frozenset())
    with use_host(host):
        yield host


@pytest.fixture(autouse=True)
def _isolated_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with no process-wide host and no entry-point autoload."""
    from loyaltykit import plugins

    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    monkeypatch.delenv(plugins.BLOCKED_PLUGINS_ENV, raising=False)
    previous = plugins.set_host(None)
    yield
    plugins.set_host(previous)
