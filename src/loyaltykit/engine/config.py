"""Loading a :class:`~loyaltykit.core.program.Program` from TOML.

The file is parsed with :mod:`tomllib` (data only; nothing in it is ever evaluated as code) and
validated key by key. Every problem raises :class:`~loyaltykit.errors.ConfigError` naming the
file, the key path (``earning[1].multiplier``), the bad value and the fix. Earning policies and
tier rules are looked up by name in the plugin registries, so plugins can add their own.

The layout (every section but ``[program]`` is optional)::

    [program]            name, currency, timezone, negative_balance, auto_enroll
    [pending]            days
    [expiry]             kind, days, months, years
    [caps]               per_transaction, per_day
    [[earning]]          name, policy, then the policy's options
    [tiers]              rule, window, window_days (the rule's options), grace_days, downgrade
    [[tiers.levels]]     name, threshold
    [[rewards]]          id, name, cost, valid_days, stock

Money, rates and multipliers are exact: write them as strings (``"1.5"``) or integers; TOML
floats are refused. Datetimes must carry an offset (``2025-03-01T00:00:00Z``).
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from loyaltykit.core.program import (
    Caps,
    ExpiryPolicy,
    PendingPolicy,
    Program,
    Reward,
    Tier,
    TierPolicy,
)
from loyaltykit.errors import ConfigError, InvalidValueError, UnknownNameError

__all__ = ["load_program", "program_from_dict", "program_from_toml"]

_SECTIONS = ("program", "pending", "expiry", "caps", "earning", "tiers", "rewards")
_PROGRAM_KEYS = ("name", "currency", "timezone", "negative_balance", "auto_enroll")


class _Ctx:
    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, path: str, value: Any, rule: str) -> ConfigError:
        return ConfigError(path, value, rule, self.source)

    def table(self, data: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(path, data, "must be a table ([section] or { key = value })")
        return data

    def array_of_tables(self, data: Any, path: str) -> list[Mapping[str, Any]]:
        if not isinstance(data, list):
            raise self.fail(path, data, f"must be an array of tables: write [[{path}]] sections")
        return [self.table(item, f"{path}[{i}]") for i, item in enumerate(data)]

    def keys(self, data: Mapping[str, Any], path: str, known: tuple[str, ...]) -> None:
        for key in data:
            if key not in known:
                where = f"{path}.{key}" if path else key
                raise self.fail(where, data[key], f"unknown key; known: {', '.join(known)}")

    def build(self, path: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> Any:
        """Call ``factory(**options)``, turning its errors into ConfigErrors under ``path``."""
        names = _option_names(factory)
        if names is not None:
            for key in options:
                if key not in names:
                    raise self.fail(
                        f"{path}.{key}",
                        options[key],
                        f"unknown option; known: {', '.join(sorted(names))}",
                    )
        try:
            return factory(**options)
        except InvalidValueError as exc:
            field = _alias_of(factory, exc.field)
            raise self.fail(f"{path}.{field}", exc.value, exc.rule) from None
        except TypeError as exc:
            raise self.fail(path, dict(options), f"missing or bad options: {exc}") from None
        except ConfigError:
            raise
        except ValueError as exc:
            raise self.fail(path, dict(options), str(exc)) from None


def _option_names(factory: Callable[..., Any]) -> set[str] | None:
    if isinstance(factory, type) and attrs.has(factory):
        return {f.alias or f.name for f in attrs.fields(factory) if f.init}
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def _alias_of(factory: Callable[..., Any], field: str) -> str:
    base = field.split("[", 1)[0]
    if isinstance(factory, type) and attrs.has(factory):
        for f in attrs.fields(factory):
            if f.name == base and f.alias and f.alias != f.name:
                return str(f.alias) + field[len(base) :]
    return field


def program_from_dict(
    data: Mapping[str, Any], *, source: str | None = None, host: Any = None
) -> Program:
    """Build a program from parsed TOML (or any mapping of the same shape).

    :param source: named in error messages (e.g. the file path).
    :param host: the plugin host whose registries resolve policy and rule names (default: the
        process-wide host).
    :raises ConfigError: naming the key path, the value and the fix.
    """
    if host is None:
        from loyaltykit.plugins import get_host

        host = get_host()
    cx = _Ctx(source)
    root = cx.table(data, "<file>")
    cx.keys(root, "", _SECTIONS)
    if "program" not in root:
        raise cx.fail("program", None, 'add a [program] section with at least name = "..."')
    head = cx.table(root["program"], "program")
    cx.keys(head, "program", _PROGRAM_KEYS)
    if "name" not in head:
        raise cx.fail("program.name", None, 'is required, e.g. name = "Coffee Club"')

    kwargs: dict[str, Any] = {k: head[k] for k in _PROGRAM_KEYS if k in head}
    if "auto_enroll" in kwargs and not isinstance(kwargs["auto_enroll"], bool):
        raise cx.fail("program.auto_enroll", kwargs["auto_enroll"], "must be true or false")
    for key, cls in (("pending", PendingPolicy), ("expiry", ExpiryPolicy), ("caps", Caps)):
        if key in root:
            kwargs[key] = cx.build(key, cls, cx.table(root[key], key))

    earning = []
    registry = host.reward_policies
    for i, table in enumerate(cx.array_of_tables(root.get("earning", []), "earning")):
        path = f"earning[{i}]"
        policy = table.get("policy")
        if not isinstance(policy, str):
            raise cx.fail(
                f"{path}.policy", policy, f"name a reward policy; known: {', '.join(registry)}"
            )
        if "name" not in table:
            raise cx.fail(f"{path}.name", None, "every earning rule needs a unique name")
        try:
            factory = registry.get(policy).factory
        except UnknownNameError:
            raise cx.fail(
                f"{path}.policy",
                policy,
                f"no reward policy of that name; known: {', '.join(registry)}; install or "
                "register the plugin that provides it",
            ) from None
        options = {k: v for k, v in table.items() if k != "policy"}
        earning.append(cx.build(path, factory, options))
    kwargs["earning"] = tuple(earning)

    if "tiers" in root:
        kwargs["tiers"] = _tiers(cx, cx.table(root["tiers"], "tiers"), host)
        names = {t.name for t in kwargs["tiers"].levels}
        for i, rule in enumerate(earning):
            for tier in getattr(rule, "multipliers", {}):
                if tier not in names:
                    raise cx.fail(
                        f"earning[{i}].multipliers.{tier}",
                        tier,
                        f"is not a tier of this program; tiers: {', '.join(sorted(names))}",
                    )

    rewards = []
    for i, table in enumerate(cx.array_of_tables(root.get("rewards", []), "rewards")):
        rewards.append(cx.build(f"rewards[{i}]", Reward, table))
    kwargs["rewards"] = tuple(rewards)

    try:
        return Program(**kwargs)
    except InvalidValueError as exc:
        field = exc.field
        if field in _PROGRAM_KEYS:
            raise cx.fail(f"program.{field}", exc.value, exc.rule) from None
        raise cx.fail(field, exc.value, exc.rule) from None


def _tiers(cx: _Ctx, table: Mapping[str, Any], host: Any) -> TierPolicy:
    registry = host.tier_rules
    rule_name = table.get("rule")
    if not isinstance(rule_name, str):
        raise cx.fail("tiers.rule", rule_name, f"name a tier rule; known: {', '.join(registry)}")
    try:
        factory = registry.get(rule_name).factory
    except UnknownNameError:
        raise cx.fail(
            "tiers.rule", rule_name, f"no tier rule of that name; known: {', '.join(registry)}"
        ) from None
    own = {"rule", "levels", "grace_days", "downgrade"}
    rule = cx.build("tiers", factory, {k: v for k, v in table.items() if k not in own})
    levels = []
    for i, level in enumerate(cx.array_of_tables(table.get("levels", []), "tiers.levels")):
        levels.append(cx.build(f"tiers.levels[{i}]", Tier, level))
    options = {k: table[k] for k in ("grace_days", "downgrade") if k in table}
    try:
        return TierPolicy(rule=rule, levels=tuple(levels), **options)
    except InvalidValueError as exc:
        raise cx.fail(f"tiers.{exc.field}", exc.value, exc.rule) from None
    except ValueError as exc:
        raise cx.fail("tiers", dict(options), str(exc)) from None


def program_from_toml(text: str, *, source: str | None = None, host: Any = None) -> Program:
    """Parse TOML text and build the program (see :func:`program_from_dict`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", None, f"is not valid TOML: {exc}", source) from None
    return program_from_dict(data, source=source, host=host)


def load_program(path: str | Path, *, host: Any = None) -> Program:
    """Read a program TOML file (see the module docstring for the layout).

    :raises ConfigError: for a missing file, invalid TOML or an invalid program, naming the file
        and the key path.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "<file>", str(p), f"cannot be read ({exc.strerror}); check the path"
        ) from None
    return program_from_toml(text, source=str(p), host=host)
