"""The plugin manager: built-in plugins, entry points, registries and switches.

One :class:`PluginHost` wraps a :class:`pluggy.PluginManager`. It registers the built-in plugins
(:data:`loyaltykit.default_plugins.DEFAULT_PLUGINS`) and, unless switched off, every plugin
installed under the ``loyaltykit`` entry-point group. Entry points are loaded lazily, once, the
first time anything asks for plugins.

Environment switches, read when a host loads its plugins:

``LOYALTYKIT_DISABLE_PLUGIN_AUTOLOAD=1``
    Do not load entry-point plugins; only built-ins and plugins registered by hand.
``LOYALTYKIT_BLOCKED_PLUGINS=name1,name2``
    Refuse the named plugins (entry-point names or built-in names such as
    ``loyaltykit.default_plugins.rfm``), even when registered by hand.

Code that needs plugins asks :func:`get_host` for the process-wide host. Tests build their own host
with :class:`PluginHost` and install it with :func:`use_host` so that nothing depends on what
happens to be installed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs
import pluggy

from loyaltykit import hookspecs
from loyaltykit.errors import DuplicateNameError, PluginError, UnknownNameError

__all__ = [
    "BLOCKED_PLUGINS_ENV",
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginInfo",
    "Register",
    "Registry",
    "RegistryEntry",
    "get_host",
    "set_host",
    "use_host",
]

ENTRY_POINT_GROUP = "loyaltykit"
"""The entry-point group third-party plugins declare (``[project.entry-points.loyaltykit]``)."""
DISABLE_AUTOLOAD_ENV = "LOYALTYKIT_DISABLE_PLUGIN_AUTOLOAD"
"""Set to ``1`` to keep entry-point plugins out."""
BLOCKED_PLUGINS_ENV = "LOYALTYKIT_BLOCKED_PLUGINS"
"""Comma-separated plugin names to refuse."""

KINDS = ("scoring_model", "tier_rule", "reward_policy")
"""The three kinds of things plugins register."""

_REGISTRATION_HOOKS = {
    "scoring_model": "loyaltykit_register_scoring_models",
    "tier_rule": "loyaltykit_register_tier_rules",
    "reward_policy": "loyaltykit_register_reward_policies",
}

T = TypeVar("T")


class Register(Protocol):
    """The callback registration hooks receive."""

    def __call__(self, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        """Register ``factory`` under ``name``.

        :param name: the name programs and users refer to it by; unique within its kind.
        :param factory: a class or callable that builds the thing.
        :param description: one line shown by ``loyaltykit plugins``.
        :raises DuplicateNameError: when another plugin already registered ``name``.
        """


@attrs.frozen(kw_only=True)
class RegistryEntry(Generic[T]):
    """One registered thing: its name, kind, factory and the plugin that provided it."""

    name: str
    """The registered name."""
    kind: str
    """``"scoring_model"``, ``"tier_rule"`` or ``"reward_policy"``."""
    factory: Callable[..., T]
    """The class or callable that builds it."""
    description: str
    """One-line description."""
    plugin: str
    """Name of the plugin that registered it."""


class Registry(Generic[T]):
    """Named factories of one kind, filled by a registration hook.

    Names are unique: registering a taken name raises
    :class:`~loyaltykit.errors.DuplicateNameError` naming both plugins.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, RegistryEntry[T]] = {}

    def add(
        self, name: str, factory: Callable[..., T], *, description: str = "", plugin: str = "?"
    ) -> None:
        """Add ``factory`` under ``name``; refuse a name that is taken."""
        if not isinstance(name, str) or not name.strip():
            raise PluginError(
                f"plugin {plugin!r} registered a {self.kind} with name {name!r}: "
                "the name must be a non-empty string"
            )
        if not callable(factory):
            raise PluginError(
                f"plugin {plugin!r} registered {self.kind} {name!r} with factory {factory!r}: "
                "the factory must be a class or callable"
            )
        if name in self._entries:
            other = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} name {name!r} is registered twice: by plugin {other!r} and by "
                f"plugin {plugin!r}; rename one of them or block one with "
                f"{BLOCKED_PLUGINS_ENV}"
            )
        self._entries[name] = RegistryEntry(
            name=name, kind=self.kind, factory=factory, description=description, plugin=plugin
        )

    def get(self, name: str) -> RegistryEntry[T]:
        """The entry named ``name``.

        :raises UnknownNameError: naming the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(
                f"no {self.kind} named {name!r}; known: {known}. Install or register the plugin "
                "that provides it"
            ) from None

    def create(self, name: str, /, **options: Any) -> T:
        """Build the thing named ``name`` with ``options``."""
        return self.get(name).factory(**options)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> list[RegistryEntry[T]]:
        """All entries, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What ``loyaltykit plugins`` shows about one plugin."""

    name: str
    """The plugin's name on the manager."""
    builtin: bool
    """Whether it ships with loyaltykit."""
    source: str
    """Where it comes from: ``"built-in"``, ``"entry point (dist 1.0)"`` or ``"registered"``."""
    hooks: tuple[str, ...]
    """The hooks it implements."""
    provides: tuple[tuple[str, str], ...]
    """``(kind, name)`` pairs it registered."""


def _env_blocked() -> set[str]:
    raw = os.environ.get(BLOCKED_PLUGINS_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _env_autoload() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in {
        "1",
        "true",
        "yes",
        "on",
    }


class PluginHost:
    """A plugin manager with the built-ins, entry points and the three registries.

    :param load_entrypoints: load plugins of the ``loyaltykit`` entry-point group; ``None`` reads
        ``LOYALTYKIT_DISABLE_PLUGIN_AUTOLOAD``.
    :param blocked: plugin names to refuse; ``None`` reads ``LOYALTYKIT_BLOCKED_PLUGINS``.
    :param builtins: register the built-in plugins (on by default).
    """

    def __init__(
        self,
        *,
        load_entrypoints: bool | None = None,
        blocked: set[str] | frozenset[str] | None = None,
        builtins: bool = True,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._load_entrypoints = load_entrypoints
        self._blocked = blocked
        self._builtins = builtins
        self._loaded = False
        self._lock = threading.RLock()
        self._registries: dict[str, Registry[Any]] = {}
        self._builtin_names: set[str] = set()
        self._entrypoint_dists: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> PluginHost:
        """Load built-ins and entry points, once; later calls do nothing. Returns ``self``."""
        with self._lock:
            if self._loaded:
                return self
            blocked = _env_blocked() if self._blocked is None else set(self._blocked)
            for name in blocked:
                self.pm.set_blocked(name)
            if self._builtins:
                from loyaltykit.default_plugins import DEFAULT_PLUGINS

                for modname in DEFAULT_PLUGINS:
                    if self.pm.is_blocked(modname):
                        continue
                    module = importlib.import_module(modname)
                    self.pm.register(module, name=modname)
                    self._builtin_names.add(modname)
            autoload = _env_autoload() if self._load_entrypoints is None else self._load_entrypoints
            if autoload:
                for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                    if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                        continue
                    try:
                        plugin = ep.load()
                    except Exception as exc:
                        raise PluginError(
                            f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} "
                            f"failed to load: {exc}; fix or uninstall that plugin, or set "
                            f"{BLOCKED_PLUGINS_ENV}={ep.name}"
                        ) from exc
                    self.pm.register(plugin, name=ep.name)
                    dist = ep.dist
                    self._entrypoint_dists[ep.name] = (
                        f"{dist.metadata['Name']} {dist.version}" if dist is not None else "?"
                    )
            self.pm.check_pending()
            self._loaded = True
            return self

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin by hand (a module, class or object with hook implementations).

        Registries built before are rebuilt on next use so that the plugin's registrations show.

        :returns: the name the plugin got on the manager.
        :raises PluginError: if the plugin is blocked or its name is taken.
        """
        self.load()
        with self._lock:
            try:
                got = self.pm.register(plugin, name=name)
            except (ValueError, pluggy.PluginValidationError) as exc:
                raise PluginError(f"cannot register plugin {name or plugin!r}: {exc}") from exc
            if got is None:
                raise PluginError(
                    f"plugin {name or plugin!r} is blocked (see {BLOCKED_PLUGINS_ENV}); "
                    "unblock it to register it"
                )
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                self.pm.unregister(name=got)
                raise PluginError(
                    f"plugin {got!r} implements a hook loyaltykit does not have: {exc}; "
                    "check the spelling against loyaltykit.hookspecs"
                ) from exc
            self._registries.clear()
            return got

    def unregister(self, name: str) -> None:
        """Remove the plugin registered as ``name``; registries are rebuilt on next use."""
        self.load()
        with self._lock:
            if self.pm.unregister(name=name) is None:
                raise UnknownNameError(f"no plugin named {name!r} is registered")
            self._registries.clear()

    # -- registries ------------------------------------------------------------------------

    def _registry(self, kind: str) -> Registry[Any]:
        self.load()
        with self._lock:
            registry = self._registries.get(kind)
            if registry is not None:
                return registry
            registry = Registry[Any](kind)
            hook = getattr(self.pm.hook, _REGISTRATION_HOOKS[kind])
            for impl in reversed(hook.get_hookimpls()):  # in registration order
                plugin_name = impl.plugin_name

                def register(
                    name: str,
                    factory: Callable[..., Any],
                    *,
                    description: str = "",
                    _plugin: str = plugin_name,
                ) -> None:
                    registry.add(name, factory, description=description, plugin=_plugin)

                impl.function(register=register)
            self._registries[kind] = registry
            return registry

    @property
    def scoring_models(self) -> Registry[Any]:
        """Registry of scoring models (RFM, BTYD models and plugins' own)."""
        return self._registry("scoring_model")

    @property
    def tier_rules(self) -> Registry[Any]:
        """Registry of tier rules."""
        return self._registry("tier_rule")

    @property
    def reward_policies(self) -> Registry[Any]:
        """Registry of reward policies (earning rules)."""
        return self._registry("reward_policy")

    def registries(self) -> Mapping[str, Registry[Any]]:
        """All three registries by kind."""
        return {kind: self._registry(kind) for kind in KINDS}

    # -- events ----------------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The hook relay: ``host.hook.loyaltykit_points_earned(member_id=..., entries=...)``."""
        self.load()
        return self.pm.hook

    # -- listing ---------------------------------------------------------------------------

    def plugins(self, *, include_builtins: bool = False) -> list[PluginInfo]:
        """The registered plugins, built-ins first when included, then by name."""
        registries = self.registries()
        provides: dict[str, list[tuple[str, str]]] = {}
        for kind, registry in registries.items():
            for entry in registry.entries():
                provides.setdefault(entry.plugin, []).append((kind, entry.name))
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if name is None or plugin is None:
                continue
            builtin = name in self._builtin_names
            if builtin and not include_builtins:
                continue
            if builtin:
                source = "built-in"
            elif name in self._entrypoint_dists:
                source = f"entry point ({self._entrypoint_dists[name]})"
            else:
                source = "registered"
            hooks = tuple(sorted(impl.name for impl in self.pm.get_hookcallers(plugin) or []))
            infos.append(
                PluginInfo(
                    name=name,
                    builtin=builtin,
                    source=source,
                    hooks=hooks,
                    provides=tuple(sorted(provides.get(name, []))),
                )
            )
        infos.sort(key=lambda i: (not i.builtin, i.name))
        return infos


_host: PluginHost | None = None
_host_lock = threading.Lock()


def get_host() -> PluginHost:
    """The process-wide plugin host, created and loaded on first use."""
    global _host
    with _host_lock:
        if _host is None:
            _host = PluginHost()
        host = _host
    return host.load()


def set_host(host: PluginHost | None) -> PluginHost | None:
    """Replace the process-wide host (``None`` resets it); returns the previous one."""
    global _host
    with _host_lock:
        previous, _host = _host, host
    return previous


@contextlib.contextmanager
def use_host(host: PluginHost) -> Iterator[PluginHost]:
    """Install ``host`` as the process-wide host inside a ``with`` block (for tests)."""
    previous = set_host(host)
    try:
        yield host.load()
    finally:
        set_host(previous)
