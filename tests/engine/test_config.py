"""Loading programs from TOML, and the sample programs under examples/programs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from loyaltykit import hookimpl
from loyaltykit.core.program import ExpiryKind, NegativeBalancePolicy, Rounding
from loyaltykit.engine import (
    Campaign,
    Engine,
    MemoryStore,
    PerUnit,
    load_program,
    program_from_toml,
)
from loyaltykit.errors import ConfigError
from loyaltykit.plugins import PluginHost

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "programs"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_sample_programs_load_and_run(path: Path, plugin_host: PluginHost) -> None:
    program = load_program(path)
    engine = Engine(program, MemoryStore())
    t = dt.datetime(2025, 4, 1, 10, tzinfo=dt.UTC)
    engine.enroll("ann", at=t, event_id="e1")
    engine.purchase(
        "ann", "42.00", at=t, event_id="e2", transaction_id="t1", currency=program.currency
    )
    assert engine.balance("ann", t).total >= 4


def test_coffee_club_is_read_exactly(plugin_host: PluginHost) -> None:
    program = load_program(EXAMPLES / "coffee-club.toml")
    assert program.currency == "EUR"
    assert program.negative_balance is NegativeBalancePolicy.DEBT
    assert program.expiry.kind is ExpiryKind.END_OF_MONTH
    base = program.earning[0]
    assert isinstance(base, PerUnit)
    assert base.category_multipliers["coffee"] == Decimal(2)
    assert base.rounding is Rounding.DOWN
    spring = program.earning[2]
    assert isinstance(spring, Campaign)
    assert spring.start == dt.datetime(2025, 3, 19, 23, tzinfo=dt.UTC)
    assert spring.budget == 250000
    assert program.tiers is not None
    assert [t.threshold for t in program.tiers.levels] == [0, 300, 1000]
    assert program.reward("mug").stock == 500


def test_plugin_policies_are_found_by_name(plugin_host: PluginHost) -> None:
    class Flat:
        """Ten points per purchase."""

        def __init__(self, *, name: str, points: int = 10) -> None:
            self.name = name
            self.pts = points
            self.scope = "transaction"
            self.triggers = frozenset({"purchase"})
            self.depends_on = ()
            self.budget = None

        def points(self, ctx: object) -> int:
            return self.pts

        def referrer_points(self, ctx: object) -> int:
            return 0

        def points_expr(self) -> object:
            import polars as pl

            return pl.lit(self.pts)

    class Plugin:
        @hookimpl
        def loyaltykit_register_reward_policies(self, register: object) -> None:
            register("flat", Flat, description="flat points")  # type: ignore[operator]

    plugin_host.register(Plugin(), name="flat-plugin")
    program = program_from_toml(
        '[program]\nname = "p"\n[[earning]]\nname = "f"\npolicy = "flat"\npoints = 7\n'
    )
    engine = Engine(program, MemoryStore())
    t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    engine.enroll("ann", at=t, event_id="e1")
    assert engine.purchase("ann", "1", at=t, event_id="e2", transaction_id="t").points == 7
    with pytest.raises(ConfigError, match=r"earning\[0\]\.colour"):
        program_from_toml(
            '[program]\nname = "p"\n[[earning]]\nname = "f"\npolicy = "flat"\ncolour = 1\n'
        )


def test_missing_file(tmp_path: Path, plugin_host: PluginHost) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_program(tmp_path / "nope.toml")


def test_toml_is_never_evaluated(tmp_path: Path, plugin_host: PluginHost) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.toml"
    path.write_text(
        f"[program]\nname = \"__import__('pathlib').Path(r'{marker}').touch()\"\n"
        '[[earning]]\nname = "b"\npolicy = "per_unit"\n'
        f"points_per_unit = \"__import__('os').system('touch {marker}')\"\n"
    )
    with pytest.raises(ConfigError, match=r"earning\[0\]\.points_per_unit"):
        load_program(path)
    assert not marker.exists()
