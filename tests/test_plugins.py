"""The plugin host: built-ins, hand registration, registries, switches, listing."""

from __future__ import annotations

from typing import Any

import pytest

import loyaltykit
from loyaltykit import plugins
from loyaltykit.errors import DuplicateNameError, PluginError, UnknownNameError
from loyaltykit.plugins import PluginHost, Registry


class Scorer:
    def __init__(self, scale: int = 1) -> None:
        self.scale = scale

    def fit(self, frame: Any) -> Scorer:
        return self

    def score(self, frame: Any) -> Any:
        return frame


class ProvidesScorer:
    @loyaltykit.hookimpl
    def loyaltykit_register_scoring_models(self, register: plugins.Register) -> None:
        register("test-scorer", Scorer, description="a test scorer")


class AlsoProvidesScorer:
    @loyaltykit.hookimpl
    def loyaltykit_register_scoring_models(self, register: plugins.Register) -> None:
        register("test-scorer", Scorer)


def test_registry_add_get_create() -> None:
    reg: Registry[Scorer] = Registry("scoring_model")
    reg.add("s", Scorer, description="d", plugin="p")
    assert "s" in reg
    assert len(reg) == 1
    assert list(reg) == ["s"]
    assert reg.create("s", scale=3).scale == 3
    entry = reg.get("s")
    assert (entry.name, entry.kind, entry.plugin, entry.description) == (
        "s",
        "scoring_model",
        "p",
        "d",
    )


def test_registry_refuses_duplicates_naming_both_plugins() -> None:
    reg: Registry[Scorer] = Registry("tier_rule")
    reg.add("gold", Scorer, plugin="first")
    with pytest.raises(DuplicateNameError, match=r"'gold'.*'first'.*'second'"):
        reg.add("gold", Scorer, plugin="second")


def test_registry_unknown_name_lists_known() -> None:
    reg: Registry[Scorer] = Registry("reward_policy")
    reg.add("a", Scorer)
    with pytest.raises(UnknownNameError, match="no reward_policy named 'b'; known: a"):
        reg.get("b")


@pytest.mark.parametrize(("name", "factory"), [("", Scorer), ("x", 42)])
def test_registry_refuses_bad_entries(name: str, factory: Any) -> None:
    with pytest.raises(PluginError):
        Registry("scoring_model").add(name, factory)


def test_registered_plugin_shows_in_registry(plugin_host: PluginHost) -> None:
    plugin_host.register(ProvidesScorer(), name="provider")
    assert "test-scorer" in plugin_host.scoring_models
    assert plugin_host.scoring_models.get("test-scorer").plugin == "provider"
    info = {i.name: i for i in plugin_host.plugins()}["provider"]
    assert info.source == "registered"
    assert ("scoring_model", "test-scorer") in info.provides
    assert "loyaltykit_register_scoring_models" in info.hooks


def test_two_plugins_with_one_name_fail_clearly(plugin_host: PluginHost) -> None:
    plugin_host.register(ProvidesScorer(), name="one")
    plugin_host.register(AlsoProvidesScorer(), name="two")
    with pytest.raises(DuplicateNameError, match=r"'one'.*'two'|'two'.*'one'"):
        _ = plugin_host.scoring_models


def test_unregister_rebuilds_registries(plugin_host: PluginHost) -> None:
    plugin_host.register(ProvidesScorer(), name="provider")
    assert "test-scorer" in plugin_host.scoring_models
    plugin_host.unregister("provider")
    assert "test-scorer" not in plugin_host.scoring_models
    with pytest.raises(UnknownNameError):
        plugin_host.unregister("provider")


def test_builtins_are_plugins_of_the_same_manager(plugin_host: PluginHost) -> None:
    from loyaltykit.default_plugins import DEFAULT_PLUGINS

    builtins = [i for i in plugin_host.plugins(include_builtins=True) if i.builtin]
    assert [i.name for i in builtins] == sorted(DEFAULT_PLUGINS)
    assert all(i.source == "built-in" for i in builtins)
    assert plugin_host.plugins() == [
        i for i in plugin_host.plugins(include_builtins=True) if not i.builtin
    ]
    for name in DEFAULT_PLUGINS:
        assert plugin_host.pm.has_plugin(name)


def test_blocked_plugins_are_refused() -> None:
    host = PluginHost(load_entrypoints=False, blocked=frozenset({"provider"}))
    with pytest.raises(PluginError, match="blocked"):
        host.register(ProvidesScorer(), name="provider")


def test_blocked_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.BLOCKED_PLUGINS_ENV, " provider , other ")
    host = PluginHost(load_entrypoints=False)
    with pytest.raises(PluginError, match="blocked"):
        host.register(ProvidesScorer(), name="provider")


def test_blocking_a_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    from loyaltykit.default_plugins import DEFAULT_PLUGINS

    if not DEFAULT_PLUGINS:
        pytest.skip("no built-in plugins registered yet")
    victim = DEFAULT_PLUGINS[0]
    host = PluginHost(load_entrypoints=False, blocked=frozenset({victim}))
    assert victim not in [i.name for i in host.plugins(include_builtins=True)]


def test_load_is_lazy_and_once() -> None:
    host = PluginHost(load_entrypoints=False)
    assert not host._loaded
    assert host.load() is host
    before = list(host.pm.list_name_plugin())
    host.load()
    assert list(host.pm.list_name_plugin()) == before


def test_get_host_is_process_wide_and_replaceable() -> None:
    first = plugins.get_host()
    assert plugins.get_host() is first
    mine = PluginHost(load_entrypoints=False)
    with plugins.use_host(mine):
        assert plugins.get_host() is mine
    assert plugins.get_host() is first


def test_autoload_switch_is_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        plugins.importlib.metadata, "entry_points", lambda group: calls.append(group) or []
    )
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "1")
    PluginHost().load()
    assert calls == []
    monkeypatch.setenv(plugins.DISABLE_AUTOLOAD_ENV, "0")
    PluginHost().load()
    assert calls == [plugins.ENTRY_POINT_GROUP]


def test_broken_entry_point_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenEP:
        name = "broken"
        value = "broken_module:plugin"
        dist = None

        def load(self) -> Any:
            raise ImportError("No module named 'broken_module'")

    monkeypatch.setattr(plugins.importlib.metadata, "entry_points", lambda group: [BrokenEP()])
    with pytest.raises(
        PluginError, match=r"'broken'.*broken_module.*LOYALTYKIT_BLOCKED_PLUGINS=broken"
    ):
        PluginHost(load_entrypoints=True).load()


def test_event_hooks_reach_plugins(plugin_host: PluginHost) -> None:
    got: list[tuple[str, int]] = []

    class Listener:
        @loyaltykit.hookimpl
        def loyaltykit_points_earned(self, member_id: str, entries: Any) -> None:
            got.append((member_id, len(entries)))

    plugin_host.register(Listener(), name="listener")
    plugin_host.hook.loyaltykit_points_earned(member_id="m", entries=[])
    assert got == [("m", 0)]


def test_unknown_hook_is_refused(plugin_host: PluginHost) -> None:
    class Typo:
        @loyaltykit.hookimpl
        def loyaltykit_points_earnd(self, member_id: str) -> None: ...

    with pytest.raises(PluginError, match="loyaltykit_points_earnd"):
        plugin_host.register(Typo(), name="typo")
    assert not plugin_host.pm.has_plugin("typo")
