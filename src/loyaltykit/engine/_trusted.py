"""Trusted constructors of frozen attrs records, for values the engine has already checked.

The public constructors of the ledger records (:class:`~loyaltykit.core.ledger.LedgerEntry`,
:class:`~loyaltykit.engine.store.Batch`, :class:`~loyaltykit.engine.store.MemberState` ...) run
their validators and converters on every call, and the engine builds several of them per event
from values that are valid by construction: ids it derived from a validated event, times of that
event, points it computed. :func:`builder` and :func:`replacer` make functions that set the fields
as given, without validators **and without converters**: callers pass values of the converted
type (a read-only mapping, a tuple, a ``Decimal``, an ``EntryKind``), or use the public
constructor. Anything that comes from outside the engine (a plugin's rule, the clock) is checked
by the caller, which falls back to the public constructor (and its error message) when a check
fails.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

_MISSING = object()


def _prepare(cls: type[Any]) -> tuple[list[attrs.Attribute[Any]], dict[str, Any]]:
    """The fields of ``cls`` and a namespace holding, for each field ``x``, ``_s_x``: a function
    ``(obj, value)`` that sets it (the slot's descriptor: faster than ``object.__setattr__``,
    which looks the descriptor up on every call)."""
    if not attrs.has(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted attrs class")
    if getattr(cls, "__attrs_post_init__", None) is not None:
        raise TypeError(f"{cls.__name__} has __attrs_post_init__; build it with its constructor")
    fields = list(attrs.fields(cls))
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_M": _MISSING}
    for f in fields:
        slot = getattr(cls, f.name, None)
        if not isinstance(slot, types.MemberDescriptorType):  # pragma: no cover - attrs slots
            raise TypeError(f"{cls.__name__}.{f.name} is not a slot")
        namespace[f"_s_{f.name}"] = slot.__set__
    return fields, namespace


def _compile(source: str, name: str, namespace: dict[str, Any], what: str) -> Any:
    exec(compile(source, f"<{what}>", "exec"), namespace)
    return namespace[name]


def builder(cls: type[T]) -> Callable[..., T]:
    """A keyword-only constructor of ``cls`` that sets every field as given (no checks).

    Fields with a plain default may be left out (they get the default, converted as attrs
    converts it); fields without a default or with a factory default must be given.
    """
    fields, namespace = _prepare(cls)
    params: list[str] = []
    for f in fields:
        default = f.default
        if default is attrs.NOTHING or isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            params.append(f.name)
        else:
            converter = f.converter
            if converter is not None:
                default = converter(default)  # type: ignore[operator]
            namespace[f"_d_{f.name}"] = default
            params.append(f"{f.name}=_d_{f.name}")
    body = "".join(f"    _s_{f.name}(self, {f.name})\n" for f in fields)
    source = f"def build(*, {', '.join(params)}):\n    self = _new(_cls)\n{body}    return self\n"
    build: Callable[..., T] = _compile(
        source, "build", namespace, f"trusted builder of {cls.__qualname__}"
    )
    build.__doc__ = f"Build a {cls.__qualname__} from valid, converted values (no checks)."
    return build


def replacer(cls: type[T]) -> Callable[..., T]:
    """Like :func:`attrs.evolve` for ``cls`` but without validators and converters: the fields
    named as keywords take the given (valid, converted) values, the others are copied."""
    fields, namespace = _prepare(cls)
    names = [f.name for f in fields]
    body = "".join(f"    _s_{n}(new, inst.{n} if {n} is _M else {n})\n" for n in names)
    params = ", ".join(f"{n}=_M" for n in names)
    source = f"def replace(inst, *, {params}):\n    new = _new(_cls)\n{body}    return new\n"
    replace: Callable[..., T] = _compile(
        source, "replace", namespace, f"trusted replacer of {cls.__qualname__}"
    )
    replace.__doc__ = f"Copy a {cls.__qualname__} with some fields replaced (no checks)."
    return replace
