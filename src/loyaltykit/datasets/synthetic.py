"""A seeded generator of synthetic customer histories with known true parameters.

:func:`generate` draws a population of customers and everything they do over an observation
window: purchases, refunds, survey answers and touchpoints. The behaviour follows the models the
library fits, with parameters you choose (:class:`SyntheticParams`), so that a fit can be checked
against the truth:

* **acquisition**: customers join at uniform times over the first part of the window; a share of
  them (prospects) never buy;
* **repeat buying**: BG/NBD (Fader, Hardie & Lee 2005) in days. Each buyer has a purchase rate
  ``lambda ~ Gamma(r, alpha)`` (per day) and, after each repeat purchase, drops out with
  probability ``p ~ Beta(a, b)``;
* **spend**: Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"). Each buyer has
  ``nu ~ Gamma(q, v)``; each purchase is worth ``z ~ Gamma(p, nu)``;
* **channels and categories** from configurable mixes, with a per-customer habit;
* **refunds** of a share of the purchases, in full or in part, some days later;
* **satisfaction**, a latent standard normal per customer tied to dropout through a Gaussian
  copula: unhappy customers have larger ``p`` (the marginal law of ``p`` stays ``Beta(a, b)``);
* **feedback**: NPS and CSAT answers whose marginal mix is configured exactly and which follow
  satisfaction;
* **interactions**: visits before purchases and while browsing, e-mail opens, support calls and
  complaints; complaints come more often from unhappy customers and often right after a customer's
  last purchase, i.e. just before the (unobserved) dropout.

Everything is vectorised numpy and polars: one million customers (about 2.8 million
transactions with the defaults) take a few seconds. The same ``seed`` gives the same data; each
part (customers, purchases, spend, refunds, feedback, interactions) draws from its own random
stream, so changing the parameters of one part leaves the others unchanged.

The model and its defaults are explained in the documentation page "Synthetic data".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import special

from loyaltykit.errors import InvalidValueError
from loyaltykit.schema import (
    AMOUNT_DTYPE,
    FEEDBACK_SCHEMA,
    INTERACTION_SCHEMA,
    TIMESTAMP_DTYPE,
    TRANSACTION_SCHEMA,
)

__all__ = [
    "CUSTOMER_SCHEMA",
    "DEFAULT_END",
    "DEFAULT_START",
    "TRUTH_SCHEMA",
    "SyntheticData",
    "SyntheticParams",
    "generate",
]

DEFAULT_START: Final = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
"""Default start of the observation window (inclusive)."""
DEFAULT_END: Final = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
"""Default end of the observation window (exclusive): 731 days after :data:`DEFAULT_START`."""

CUSTOMER_SCHEMA: Final = pl.Schema(
    {
        "customer_id": pl.String(),
        "joined_at": TIMESTAMP_DTYPE,
        "birthday": pl.Date(),
        "referred_by": pl.String(),
    }
)
"""Columns of :attr:`SyntheticData.customers`."""

TRUTH_SCHEMA: Final = pl.Schema(
    {
        "customer_id": pl.String(),
        "is_prospect": pl.Boolean(),
        "lambda_per_day": pl.Float64(),
        "p_dropout": pl.Float64(),
        "nu": pl.Float64(),
        "mean_spend": pl.Float64(),
        "satisfaction": pl.Float64(),
        "preferred_channel": pl.String(),
        "repeat_purchases": pl.Int64(),
        "alive_at_end": pl.Boolean(),
        "dropped_out_at": TIMESTAMP_DTYPE,
    }
)
"""Columns of :attr:`SyntheticData.truth`, the latent values of each customer."""

_DAY_US: Final = 86_400_000_000
_HOUR_US: Final = 3_600_000_000

Mix = tuple[tuple[str, float], ...]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------


def _to_mix(value: Mapping[str, float] | Iterable[tuple[str, float]]) -> Mix:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(name), float(weight)) for name, weight in items)


def _to_weights(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(w) for w in value)


def _fail(attribute: attrs.Attribute[Any], value: Any, rule: str) -> None:
    raise InvalidValueError("SyntheticParams", attribute.name, value, rule)


def _positive(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        _fail(attribute, value, "must be a finite number > 0")


def _non_negative(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not math.isfinite(value) or value < 0:
        _fail(attribute, value, "must be a finite number >= 0")


def _probability(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        _fail(attribute, value, "must be a probability between 0 and 1")


def _correlation(inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not -1.0 < value < 1.0:
        _fail(attribute, value, "must be a correlation strictly between -1 and 1")


def _check_mix(inst: Any, attribute: attrs.Attribute[Any], value: Mix) -> None:
    names = [name for name, _ in value]
    if not value:
        _fail(attribute, value, "must name at least one choice, e.g. {'store': 1.0}")
    if any(not name.strip() for name in names) or len(set(names)) != len(names):
        _fail(attribute, value, "names must be non-empty and unique")
    if any(not math.isfinite(w) or w < 0 for _, w in value) or sum(w for _, w in value) <= 0:
        _fail(attribute, value, "weights must be finite, >= 0 and not all 0")


def _check_weights(length: int) -> Any:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: tuple[float, ...]) -> None:
        if len(value) != length:
            _fail(attribute, value, f"must have exactly {length} weights")
        if any(not math.isfinite(w) or w < 0 for w in value) or sum(value) <= 0:
            _fail(attribute, value, "weights must be finite, >= 0 and not all 0")

    return check


def _check_comments(inst: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value or any(not isinstance(v, str) or not v.strip() for v in value):
        _fail(attribute, value, "must hold at least one non-empty comment")


_DEFAULT_HOURS: Final = (
    # 00-05: night
    0.2, 0.1, 0.1, 0.1, 0.1, 0.3,
    # 06-11: morning
    0.8, 2.0, 3.5, 4.5, 5.5, 6.5,
    # 12-17: lunch peak, afternoon
    8.0, 7.5, 6.0, 6.0, 6.5, 7.5,
    # 18-23: evening peak
    8.5, 8.0, 6.5, 4.5, 2.5, 1.0,
)  # fmt: skip

_DEFAULT_NPS: Final = (
    # 0-6: detractors (25 %)
    0.02, 0.01, 0.01, 0.02, 0.03, 0.06, 0.10,
    # 7-8: passives (30 %)
    0.13, 0.17,
    # 9-10: promoters (45 %)
    0.20, 0.25,
)  # fmt: skip


@attrs.frozen(kw_only=True)
class SyntheticParams:
    """The true parameters of the synthetic population. Every time is in **days** unless named.

    The defaults give about 2.8 transactions per customer over the default two-year window
    (1,000,000 customers: about 2.8 million rows), with a CDNOW-like shape: most buyers buy a few
    times, a few buy often, and many drop out early.
    """

    # -- acquisition ---------------------------------------------------------------------------
    acquisition_fraction: float = attrs.field(default=0.75, validator=_probability)
    """Customers join at uniform times over this leading share of the window (0.75: the first
    three quarters). Buyers make their first purchase the moment they join."""
    prospect_share: float = attrs.field(default=0.05, validator=_probability)
    """Share of customers who join but never buy (lifecycle stage "prospect")."""
    referral_share: float = attrs.field(default=0.10, validator=_probability)
    """Share of customers referred by an earlier customer (the more satisfied of two earlier
    customers drawn at random, so that satisfied customers refer more)."""
    birthday_share: float = attrs.field(default=0.60, validator=_probability)
    """Share of customers whose birthday is known (age at joining uniform over 18-75 years)."""

    # -- repeat buying: BG/NBD, time unit days -----------------------------------------------
    r: float = attrs.field(default=0.55, validator=_positive)
    """Shape of the Gamma distribution of the purchase rates ``lambda`` (BG/NBD ``r``)."""
    alpha: float = attrs.field(default=77.0, validator=_positive)
    """Rate of the Gamma distribution of ``lambda``, in days (BG/NBD ``alpha``): the mean rate is
    ``r / alpha`` repeat purchases per day while alive (default: one per 140 days)."""
    a: float = attrs.field(default=0.85, validator=_positive)
    """First shape of the Beta distribution of the dropout probability ``p`` (BG/NBD ``a``)."""
    b: float = attrs.field(default=2.5, validator=_positive)
    """Second shape of the Beta distribution of ``p`` (BG/NBD ``b``); mean ``p = a / (a + b)``."""

    # -- spend: Gamma-Gamma ----------------------------------------------------------------------
    spend_p: float = attrs.field(default=6.25, validator=_positive)
    """Shape of the Gamma distribution of one purchase's value (Gamma-Gamma ``p``)."""
    spend_q: float = attrs.field(default=3.74, validator=_positive)
    """Shape of the Gamma distribution of the per-customer rate ``nu`` (Gamma-Gamma ``q``)."""
    spend_v: float = attrs.field(default=15.44, validator=_positive)
    """Rate of the Gamma distribution of ``nu`` (Gamma-Gamma ``v``, often written gamma). The
    population mean purchase value is ``p * v / (q - 1)`` (default: 35.22) when ``q > 1``."""
    currency: str = attrs.field(default="EUR")
    """Currency of every amount (ISO 4217 code)."""
    mean_quantity: float = attrs.field(default=1.8, validator=_positive)
    """Mean number of items of a purchase: ``1 + Poisson(mean_quantity - 1)``; must be >= 1."""

    # -- channels, categories, time of day -------------------------------------------------------
    channels: Mix = attrs.field(
        default=(("store", 0.50), ("online", 0.35), ("app", 0.15)),
        converter=_to_mix,
        validator=_check_mix,
    )
    """Sales channels and their share of transactions (a mapping or ``(name, weight)`` pairs;
    weights are normalised)."""
    channel_habit: float = attrs.field(default=0.7, validator=_probability)
    """Probability that a purchase uses the customer's preferred channel (drawn from
    :attr:`channels`); otherwise the channel is drawn afresh. The overall mix stays
    :attr:`channels`."""
    categories: Mix = attrs.field(
        default=(
            ("grocery", 0.30),
            ("apparel", 0.20),
            ("home", 0.15),
            ("beauty", 0.12),
            ("electronics", 0.10),
            ("toys", 0.08),
            ("books", 0.05),
        ),
        converter=_to_mix,
        validator=_check_mix,
    )
    """Product categories and their share of purchases (independent of the amount)."""
    category_habit: float = attrs.field(default=0.5, validator=_probability)
    """Probability that a purchase is in the customer's favourite category."""
    hour_weights: tuple[float, ...] = attrs.field(
        default=_DEFAULT_HOURS, converter=_to_weights, validator=_check_weights(24)
    )
    """Relative weight of each hour of the day (UTC, 24 values) for purchase times. The day of
    each purchase follows the BG/NBD process; only its time of day is redrawn from these
    weights."""

    # -- refunds -------------------------------------------------------------------------------
    refund_rate: float = attrs.field(default=0.05, validator=_probability)
    """Share of purchases that are refunded (refunds falling after the window are not seen)."""
    full_refund_share: float = attrs.field(default=0.7, validator=_probability)
    """Share of refunds that return the full amount; the others return 10-90 % of it (uniform)."""
    refund_delay_days: float = attrs.field(default=8.0, validator=_positive)
    """Mean delay of a refund after its purchase: one hour plus an exponential delay, in days."""

    # -- satisfaction and feedback --------------------------------------------------------------
    satisfaction_dropout_corr: float = attrs.field(default=0.6, validator=_correlation)
    """Gaussian-copula correlation between dissatisfaction and the dropout probability ``p``
    (0: independent). Satisfaction is standard normal; ``p`` stays ``Beta(a, b)``."""
    feedback_rate: float = attrs.field(default=0.3, validator=_probability)
    """Share of buyers who answer one survey."""
    survey_mix: Mix = attrs.field(
        default=(("nps", 0.5), ("csat", 0.2), ("both", 0.3)),
        converter=_to_mix,
        validator=_check_mix,
    )
    """Which questions an answer has: ``"nps"``, ``"csat"`` or ``"both"``."""
    nps_weights: tuple[float, ...] = attrs.field(
        default=_DEFAULT_NPS, converter=_to_weights, validator=_check_weights(11)
    )
    """Probability of each NPS score 0-10 (11 values, normalised). The defaults give 45 %
    promoters (9-10), 30 % passives (7-8) and 25 % detractors (0-6): NPS = +20."""
    csat_weights: tuple[float, ...] = attrs.field(
        default=(0.06, 0.09, 0.20, 0.35, 0.30), converter=_to_weights, validator=_check_weights(5)
    )
    """Probability of each CSAT score 1-5 (5 values, normalised)."""
    satisfaction_feedback_corr: float = attrs.field(default=0.8, validator=_correlation)
    """Correlation between satisfaction and the latent answer; the score is the answer's
    quantile in the configured mix, so the mix is exact whatever the correlation."""
    survey_delay_days: float = attrs.field(default=3.0, validator=_positive)
    """Mean delay (exponential, days) between the purchase a survey follows and the answer."""
    comment_share: float = attrs.field(default=0.2, validator=_probability)
    """Share of answers with a free-text comment (one of :attr:`comments_detractor`,
    :attr:`comments_passive`, :attr:`comments_promoter` by the answer's NPS group, or by CSAT
    1-2 / 3 / 4-5 when there is no NPS)."""
    comments_detractor: tuple[str, ...] = attrs.field(
        default=(
            "Delivery was late again.",
            "Prices went up, quality went down.",
            "Nobody answered my complaint.",
            "The refund took weeks.",
        ),
        converter=tuple,
        validator=_check_comments,
    )
    """Comments of unhappy customers."""
    comments_passive: tuple[str, ...] = attrs.field(
        default=("It was fine.", "Okay, nothing special.", "Good products, slow checkout."),
        converter=tuple,
        validator=_check_comments,
    )
    """Comments of neutral customers."""
    comments_promoter: tuple[str, ...] = attrs.field(
        default=(
            "Great service, I recommend it.",
            "Love the rewards programme!",
            "Fast delivery and friendly staff.",
        ),
        converter=tuple,
        validator=_check_comments,
    )
    """Comments of happy customers."""
    feedback_channels: Mix = attrs.field(
        default=(("email", 0.6), ("app", 0.25), ("store", 0.15)),
        converter=_to_mix,
        validator=_check_mix,
    )
    """Channels surveys are answered through."""

    # -- interactions ---------------------------------------------------------------------------
    visits_per_purchase: float = attrs.field(default=0.5, validator=_non_negative)
    """Mean number of visits (Poisson) in the hours before each purchase, in its channel."""
    visit_lead_hours: float = attrs.field(default=30.0, validator=_positive)
    """Mean lead (exponential, **hours**) of those visits before the purchase."""
    browse_rate_per_day: float = attrs.field(default=0.002, validator=_non_negative)
    """Visits without a purchase per day while the customer is active (Poisson)."""
    email_open_rate_per_day: float = attrs.field(default=0.005, validator=_non_negative)
    """Opened marketing e-mails per day while the customer is active (Poisson)."""
    support_call_rate_per_day: float = attrs.field(default=0.0005, validator=_non_negative)
    """Support calls per day while active (Poisson)."""
    complaint_rate_per_day: float = attrs.field(default=0.0002, validator=_non_negative)
    """Complaints per day while active for a customer of median satisfaction; scaled by
    ``2 * Phi(-satisfaction)`` (unhappy customers complain more; the mean is unchanged)."""
    churn_complaint_prob: float = attrs.field(default=0.3, validator=_probability)
    """Probability, for a median-satisfaction customer who drops out in the window, of a
    complaint shortly after their last purchase (scaled by ``2 * Phi(-satisfaction)``, capped at
    1)."""
    churn_complaint_delay_days: float = attrs.field(default=5.0, validator=_positive)
    """Mean delay (exponential, days) of that complaint after the last purchase."""
    complaint_channels: Mix = attrs.field(
        default=(("phone", 0.5), ("email", 0.3), ("store", 0.2)),
        converter=_to_mix,
        validator=_check_mix,
    )
    """Channels complaints come through."""

    @mean_quantity.validator
    def _check_quantity(self, attribute: attrs.Attribute[Any], value: float) -> None:
        if value < 1:
            _fail(attribute, value, "must be >= 1 (every purchase has at least one item)")

    @currency.validator
    def _check_currency(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
            _fail(attribute, value, "must be a three-letter ISO 4217 code such as 'EUR'")

    @survey_mix.validator
    def _check_survey_mix(self, attribute: attrs.Attribute[Any], value: Mix) -> None:
        unknown = sorted({name for name, _ in value} - {"nps", "csat", "both"})
        if unknown:
            _fail(attribute, value, f"names must be 'nps', 'csat' or 'both', not {unknown}")

    # -- derived figures ---------------------------------------------------------------------

    @property
    def mean_purchase_rate_per_day(self) -> float:
        """Population mean of ``lambda``: ``r / alpha`` repeat purchases per day."""
        return self.r / self.alpha

    @property
    def mean_dropout(self) -> float:
        """Population mean of ``p``: ``a / (a + b)``."""
        return self.a / (self.a + self.b)

    @property
    def mean_spend(self) -> float:
        """Population mean purchase value ``p * v / (q - 1)`` (infinite when ``q <= 1``)."""
        if self.spend_q <= 1:
            return math.inf
        return self.spend_p * self.spend_v / (self.spend_q - 1)

    @property
    def nps_mix(self) -> dict[str, float]:
        """Shares of detractors (0-6), passives (7-8) and promoters (9-10) of the NPS answers."""
        w = np.asarray(self.nps_weights) / sum(self.nps_weights)
        return {
            "detractor": float(w[:7].sum()),
            "passive": float(w[7:9].sum()),
            "promoter": float(w[9:].sum()),
        }

    def expected_repeat_purchases(self, days: float) -> float:
        """BG/NBD ``E[X(t)]``: mean repeat purchases of a buyer within ``days`` of joining.

        The closed form of Fader, Hardie & Lee (2005, eq. 9); at ``a = 1``, where it divides by
        zero, the same expectation by quadrature over ``p``.
        """
        if days <= 0:
            return 0.0
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        if abs(a - 1) < 1e-6:
            return _expected_repeat_numeric(r, alpha, a, b, days)
        hyp = float(special.hyp2f1(r, b, a + b - 1, days / (alpha + days)))
        return float((a + b - 1) / (a - 1) * (1 - (alpha / (alpha + days)) ** r * hyp))


def _expected_repeat_numeric(r: float, alpha: float, a: float, b: float, days: float) -> float:
    """E[X(t)] of BG/NBD by quadrature over p (valid for any a > 0).

    Given ``lambda`` and ``p``, ``E[X(t)] = (1 - exp(-lambda p t)) / p``; averaging over
    ``lambda ~ Gamma(r, alpha)`` gives ``(1 - (alpha / (alpha + p t))^r) / p``, then over ``p``.
    """
    from scipy import integrate

    log_beta = float(special.betaln(a, b))

    def integrand(p: float) -> float:
        inner = -math.expm1(-r * math.log1p(p * days / alpha)) / p
        return inner * math.exp((a - 1) * math.log(p) + (b - 1) * math.log1p(-p) - log_beta)

    value, _ = integrate.quad(integrand, 0.0, 1.0, limit=200)
    return float(value)


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SyntheticData:
    """What :func:`generate` returns: the frames, the truth and how they were made."""

    customers: pl.DataFrame
    """One row per customer (:data:`CUSTOMER_SCHEMA`): id, ``joined_at`` (the first purchase for
    buyers), ``birthday`` (null when unknown) and ``referred_by`` (null when not referred),
    ordered by ``joined_at``."""
    transactions: pl.DataFrame
    """Purchases and refunds in :data:`loyaltykit.schema.TRANSACTION_SCHEMA`, in time order;
    ``transaction_id`` grows with time."""
    feedback: pl.DataFrame
    """Survey answers in :data:`loyaltykit.schema.FEEDBACK_SCHEMA`, in time order."""
    interactions: pl.DataFrame
    """Touchpoints in :data:`loyaltykit.schema.INTERACTION_SCHEMA`, in time order. Types:
    ``visit``, ``email_open``, ``support_call``, ``complaint``."""
    truth: pl.DataFrame
    """The latent values of each customer (:data:`TRUTH_SCHEMA`): ``lambda_per_day``,
    ``p_dropout``, ``nu`` and ``mean_spend`` (``spend_p / nu``), ``satisfaction``, the preferred
    channel, the number of repeat purchases in the window, whether the customer is still alive at
    the end and when they dropped out (the time of their last purchase; null if alive).
    Prospects have null model values."""
    params: SyntheticParams
    """The parameters the data were drawn with."""
    seed: int
    """The seed."""
    start: dt.datetime
    """Start of the observation window (inclusive, UTC)."""
    end: dt.datetime
    """End of the observation window (exclusive, UTC): the ``observation_end`` of a summary."""

    def write(
        self, directory: str | Path, *, format: Literal["parquet", "csv"] = "parquet"
    ) -> dict[str, Path]:
        """Write the five frames to ``directory`` (created if needed), one file each.

        :param directory: the folder; files are named ``customers.parquet``,
            ``transactions.parquet``, ``feedback.parquet``, ``interactions.parquet`` and
            ``truth.parquet`` (or ``.csv``).
        :param format: ``"parquet"`` (keeps the exact dtypes) or ``"csv"`` (timestamps in ISO
            8601 with their offset, amounts as decimal text).
        :returns: the path of each frame by name.
        :raises InvalidValueError: for another format.
        """
        if format not in ("parquet", "csv"):
            raise InvalidValueError(
                "SyntheticData.write", "format", format, "must be 'parquet' or 'csv'"
            )
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("customers", "transactions", "feedback", "interactions", "truth"):
            frame: pl.DataFrame = getattr(self, name)
            path = folder / f"{name}.{format}"
            if format == "parquet":
                frame.write_parquet(path)
            else:
                frame.write_csv(path)
            paths[name] = path
        return paths


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------

_STREAMS: Final = (
    "customers",
    "purchases",
    "spend",
    "items",
    "refunds",
    "feedback",
    "interactions",
)


def _make_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per part of the model, all derived from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {
        name: np.random.Generator(np.random.PCG64(child))
        for name, child in zip(_STREAMS, children, strict=True)
    }


def _weights(mix: Mix | tuple[float, ...]) -> FloatArray:
    raw = np.asarray([w for _, w in mix] if mix and isinstance(mix[0], tuple) else mix, float)
    return np.asarray(raw / raw.sum(), dtype=np.float64)


def _draw(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    """Indices drawn from ``weights`` (inverse CDF of a uniform: fast for large sizes)."""
    cum = np.cumsum(weights)
    cum[-1] = 1.0
    return np.searchsorted(cum, rng.random(size), side="right").astype(np.int64)


def _with_habit(
    rng: np.random.Generator, weights: FloatArray, habit: float, favourite: IntArray
) -> IntArray:
    """Per row: the owner's favourite with probability ``habit``, else a fresh draw."""
    fresh = _draw(rng, weights, favourite.size)
    keep = rng.random(favourite.size) < habit
    return np.where(keep, favourite, fresh)


def _to_us(start_us: int, days: FloatArray) -> IntArray:
    return start_us + np.floor(days * _DAY_US).astype(np.int64)


def _group_index(counts: IntArray) -> tuple[IntArray, IntArray]:
    """For groups of sizes ``counts``: the owner of each element and its index in its group."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    within = np.arange(total, dtype=np.int64) - starts[owner]
    return owner, within


def _ids(prefix: str, numbers: pl.Expr, width: int) -> pl.Expr:
    """``prefix`` and the number zero-padded to ``width`` digits (``10**width`` added, then its
    leading ``1`` dropped: twice as fast as ``str.zfill``)."""
    padded = (numbers.cast(pl.Int64) + 10**width).cast(pl.String).str.slice(1)
    return pl.concat_str(pl.lit(prefix), padded)


def _argsort(values: IntArray) -> IntArray:
    """Stable argsort of int64 values, on polars' multi-threaded sort."""
    frame = pl.DataFrame({"v": values}).with_row_index("i")
    order = frame.sort("v", maintain_order=True)["i"].to_numpy()
    return np.asarray(order, dtype=np.int64)


def _names(names: Mix | tuple[str, ...], codes: pl.Expr) -> pl.Expr:
    """The names of integer codes (indices into ``names``), as a String expression."""
    labels = [n[0] if isinstance(n, tuple) else n for n in names]
    return pl.lit(pl.Series(labels, dtype=pl.String)).gather(codes)


def _id_width(count: int) -> int:
    return max(len(str(max(count - 1, 0))), 1)


def generate(
    n_customers: int,
    *,
    seed: int,
    start: dt.datetime = DEFAULT_START,
    end: dt.datetime = DEFAULT_END,
    params: SyntheticParams | None = None,
    with_feedback: bool = True,
    with_interactions: bool = True,
) -> SyntheticData:
    """Draw a synthetic population and its history over ``[start, end)``.

    :param n_customers: how many customers (buyers and prospects); 0 gives empty frames.
    :param seed: the random seed; the same seed and parameters give the same data.
    :param start: start of the observation window (timezone-aware, inclusive).
    :param end: end of the window (timezone-aware, exclusive); at least one day after ``start``.
    :param params: the true parameters; ``None`` means ``SyntheticParams()``.
    :param with_feedback: draw the survey answers; ``False`` leaves :attr:`SyntheticData.feedback`
        empty (faster when only transactions are needed). The other frames do not change.
    :param with_interactions: draw the touchpoints; ``False`` leaves
        :attr:`SyntheticData.interactions` empty. The other frames do not change.
    :returns: the frames, the per-customer truth and the inputs, as :class:`SyntheticData`.
    :raises InvalidValueError: for a negative count, a non-integer seed, naive datetimes or a
        window shorter than a day.
    """
    params = SyntheticParams() if params is None else params
    if isinstance(n_customers, bool) or not isinstance(n_customers, int) or n_customers < 0:
        raise InvalidValueError("generate", "n_customers", n_customers, "must be an int >= 0")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidValueError("generate", "seed", seed, "must be an int >= 0")
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, dt.datetime) or value.utcoffset() is None:
            raise InvalidValueError(
                "generate",
                name,
                value,
                "must be a timezone-aware datetime, e.g. datetime(2024, 1, 1, tzinfo=datetime.UTC)",
            )
    start_utc = start.astimezone(dt.UTC)
    end_utc = end.astimezone(dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    start_us = (start_utc - epoch) // dt.timedelta(microseconds=1)
    end_us = (end_utc - epoch) // dt.timedelta(microseconds=1)
    if end_us - start_us < _DAY_US:
        raise InvalidValueError(
            "generate", "end", end, f"must be at least one day after start={start!r}"
        )
    window_days = (end_us - start_us) / _DAY_US
    rngs = _make_rngs(seed)
    g = _Generation(params, rngs, n_customers, start_us, end_us, window_days)
    return SyntheticData(
        customers=g.customers(),
        transactions=g.transactions(),
        feedback=g.feedback() if with_feedback else FEEDBACK_SCHEMA.to_frame(),
        interactions=g.interactions() if with_interactions else INTERACTION_SCHEMA.to_frame(),
        truth=g.truth(),
        params=params,
        seed=seed,
        start=start_utc,
        end=end_utc,
    )


class _Generation:
    """The arrays of one generation; each method builds one frame."""

    def __init__(
        self,
        params: SyntheticParams,
        rngs: dict[str, np.random.Generator],
        n: int,
        start_us: int,
        end_us: int,
        window_days: float,
    ) -> None:
        self.params = params
        self.rngs = rngs
        self.n = n
        self.start_us = start_us
        self.end_us = end_us
        self.window_days = window_days
        self.cid_width = _id_width(n)
        self._draw_customers()
        self._draw_purchases()
        self._draw_spend_and_items()
        self._draw_refunds()

    # -- customers and latent values ---------------------------------------------------------

    def _draw_customers(self) -> None:
        P, rng, n = self.params, self.rngs["customers"], self.n
        join_days = np.sort(rng.random(n) * (P.acquisition_fraction * self.window_days))
        self.join_days = join_days
        self.T = self.window_days - join_days  # days from joining to the end
        self.prospect = rng.random(n) < P.prospect_share
        self.lam = rng.gamma(P.r, 1.0 / P.alpha, n)
        p = rng.beta(P.a, P.b, n)
        self.p = p
        # Gaussian copula: dissatisfaction correlates with the quantile of p.
        u = np.clip(special.betainc(P.a, P.b, p), 1e-15, 1 - 1e-15)
        rho = P.satisfaction_dropout_corr
        self.satisfaction = -rho * special.ndtri(u) + math.sqrt(
            1 - rho * rho
        ) * rng.standard_normal(n)
        self.nu = rng.gamma(P.spend_q, 1.0 / P.spend_v, n)
        self.preferred_channel = _draw(rng, _weights(P.channels), n)
        self.favourite_category = _draw(rng, _weights(P.categories), n)
        # referrals (resolved once the joining order is known, see _label_customers)
        self.referred = rng.random(n) < P.referral_share
        self.referral_draws = rng.random((2, n))
        has_birthday = rng.random(n) < P.birthday_share
        age_days = (18 + rng.random(n) * 57) * 365.25
        self.birthday_offset = np.where(has_birthday, np.floor(age_days), -1).astype(np.int64)

    # -- repeat purchases: BG/NBD ---------------------------------------------------------------

    def _draw_purchases(self) -> None:
        rng = self.rngs["purchases"]
        buyers = np.flatnonzero(~self.prospect)
        lam, p, T = self.lam[buyers], self.p[buyers], self.T[buyers]
        # arrivals of the Poisson process in (0, T] and the repeat purchase at which the
        # customer drops out (geometric on 1, 2, ...): the observed count is the smaller.
        arrivals = rng.poisson(lam * T)
        lifetime = rng.geometric(np.clip(p, 1e-12, 1.0))
        x = np.minimum(arrivals, lifetime).astype(np.int64)
        alive = lifetime > arrivals
        # The first x of `arrivals` uniform order statistics on (0, T]: S_j / S_{n+1}, with S
        # the partial sums of n+1 standard exponentials; S_{n+1} = S_x + Gamma(n + 1 - x).
        owner, _ = _group_index(x)
        steps = rng.standard_exponential(int(x.sum()))
        partial = np.cumsum(steps)
        ends = np.cumsum(x)
        before = np.concatenate(([0.0], partial))[ends - x]  # cumulative sum before each group
        s = partial - before[owner]
        s_x = np.zeros(x.size)
        has = x > 0
        s_x[has] = s[ends[has] - 1]
        total = s_x + rng.gamma(np.maximum(arrivals - x + 1, 1).astype(np.float64), 1.0)
        repeat_days = T[owner] * s / total[owner]
        del steps, partial, before, s, owner, total, s_x  # keep the peak memory down

        n_buyers = buyers.size
        counts = x + 1
        row_owner, row_within = _group_index(counts)
        rel = np.zeros(row_owner.size)
        rel[row_within > 0] = repeat_days  # rows of one buyer: first purchase, then repeats
        self.buyers = buyers
        self.x = x
        self.alive = alive
        self.p_owner = buyers[row_owner]  # customer index of each purchase row
        days = self.join_days[self.p_owner] + rel
        continuous_us = _to_us(self.start_us, days)
        # keep the day of each purchase, redraw its time of day from the hour profile
        items = self.rngs["items"]
        hours = _draw(items, _weights(self.params.hour_weights), days.size)
        redrawn = (continuous_us // _DAY_US) * _DAY_US + hours * _HOUR_US
        redrawn += np.floor(items.random(days.size) * _HOUR_US).astype(np.int64)
        ok = (redrawn >= self.start_us) & (redrawn < self.end_us)
        self.p_time = np.where(ok, redrawn, continuous_us)
        del rel, row_owner, row_within, days, continuous_us, hours, redrawn, ok, repeat_days
        # per buyer: first and last purchase row; joined_at is the earliest purchase (the day
        # of the acquisition), the dropout time the last purchase of those who dropped out
        self.first_row = np.cumsum(counts) - counts
        self.counts = counts
        joined = _to_us(self.start_us, self.join_days)
        active_end = np.full(self.n, self.end_us, dtype=np.int64)
        dropout = np.full(self.n, -1, dtype=np.int64)
        if n_buyers:
            joined[buyers] = np.minimum.reduceat(self.p_time, self.first_row)
            last = np.maximum.reduceat(self.p_time, self.first_row)
            dropout[buyers] = np.where(alive, -1, last)
            active_end[buyers] = np.where(alive, self.end_us, last + 1)
        self.joined_us = joined
        self._label_customers()
        # ids by label, built once and gathered for every frame
        self.customer_ids = pl.select(
            _ids("C", pl.int_range(self.n, dtype=pl.Int64), self.cid_width)
        ).to_series()
        self.dropout_us = dropout
        self.active_end_us = active_end  # exclusive end of each customer's active span

    def _label_customers(self) -> None:
        """Number customers in joining order; pick each referred customer's referrer.

        Redrawing the time of day can swap two customers who joined on the same day, so the
        labels (and ids) follow the final ``joined_at``. A referrer is the more satisfied of two
        customers who joined earlier.
        """
        n = self.n
        self.order = _argsort(self.joined_us)  # internal index by label
        self.label = np.empty(n, dtype=np.int64)
        self.label[self.order] = np.arange(n, dtype=np.int64)
        earlier = self.label  # how many customers joined before each one
        c1 = np.floor(self.referral_draws[0] * earlier).astype(np.int64)
        c2 = np.floor(self.referral_draws[1] * earlier).astype(np.int64)
        s1, s2 = self.satisfaction[self.order[c1]], self.satisfaction[self.order[c2]]
        better = np.where(s1 >= s2, c1, c2)
        self.referrer_label = np.where(self.referred & (earlier > 0), better, -1)

    # -- spend, quantity, channel, category ----------------------------------------------------

    def _draw_spend_and_items(self) -> None:
        P = self.params
        rng = self.rngs["spend"]
        m = self.p_owner.size
        value = rng.gamma(P.spend_p, 1.0, m) / self.nu[self.p_owner]
        self.p_cents = np.maximum(np.rint(value * 100), 1).astype(np.int64)
        rng = self.rngs["items"]
        self.p_quantity = 1 + rng.poisson(P.mean_quantity - 1, m).astype(np.int64)
        self.p_channel = _with_habit(
            rng, _weights(P.channels), P.channel_habit, self.preferred_channel[self.p_owner]
        )
        self.p_category = _with_habit(
            rng, _weights(P.categories), P.category_habit, self.favourite_category[self.p_owner]
        )

    # -- refunds -----------------------------------------------------------------------------

    def _draw_refunds(self) -> None:
        P, rng = self.params, self.rngs["refunds"]
        m = self.p_owner.size
        refunded = rng.random(m) < P.refund_rate
        full = rng.random(m) < P.full_refund_share
        fraction = 0.1 + 0.8 * rng.random(m)
        delay_us = _HOUR_US + np.floor(
            rng.standard_exponential(m) * (P.refund_delay_days * _DAY_US - _HOUR_US)
        ).astype(np.int64)
        r_time = self.p_time + delay_us
        keep = refunded & (r_time < self.end_us)
        rows = np.flatnonzero(keep)
        cents = self.p_cents[rows]
        partial_cents = np.clip(np.rint(cents * fraction[rows]), 1, np.maximum(cents - 1, 1))
        is_full = full[rows] | (cents <= 1)
        self.r_of = rows
        self.r_time = r_time[rows]
        self.r_cents = np.where(is_full, cents, partial_cents).astype(np.int64)
        qty = self.p_quantity[rows]
        partial_qty = np.clip(np.rint(qty * fraction[rows]), 1, qty).astype(np.int64)
        self.r_quantity = np.where(is_full, qty, partial_qty)

    # -- frames ------------------------------------------------------------------------------

    def customers(self) -> pl.DataFrame:
        """The customers frame."""
        order = self.order
        joined = self.joined_us[order]
        offset = self.birthday_offset[order]
        birthday_days = np.where(offset >= 0, joined // _DAY_US - offset, 0)
        frame = pl.DataFrame(
            {
                "customer_id": self.customer_ids,
                "joined_at": joined,
                "birthday": birthday_days.astype(np.int32),
                "has_birthday": offset >= 0,
                "referrer": self.referrer_label[order],
            }
        )
        return frame.select(
            pl.col("customer_id"),
            pl.col("joined_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
            pl.when(pl.col("has_birthday"))
            .then(pl.col("birthday").cast(pl.Date))
            .alias("birthday"),
            pl.when(pl.col("referrer") >= 0)
            .then(pl.col("customer_id").gather(pl.col("referrer").clip(0)))
            .alias("referred_by"),
        ).cast(CUSTOMER_SCHEMA)

    def transactions(self) -> pl.DataFrame:
        """The transactions frame: purchases and refunds in time order."""
        P = self.params
        m, k = self.p_owner.size, self.r_of.size
        times = np.concatenate((self.p_time, self.r_time))
        kind = np.concatenate((np.zeros(m, np.int8), np.ones(k, np.int8)))
        order = _argsort(times)  # by time; ties: purchases before refunds
        rank = np.empty(m + k, dtype=np.int64)
        rank[order] = np.arange(m + k, dtype=np.int64)
        refund_of = np.concatenate((np.full(m, -1, np.int64), rank[self.r_of]))
        owner = self.label[np.concatenate((self.p_owner, self.p_owner[self.r_of]))]
        channel = np.concatenate((self.p_channel, self.p_channel[self.r_of]))
        category = np.concatenate((self.p_category, self.p_category[self.r_of]))
        w_t = _id_width(m + k)
        frame = pl.DataFrame(
            {
                "rank": rank[order],
                "customer_id": self.customer_ids.gather(owner[order]),
                "time": times[order],
                "cents": np.concatenate((self.p_cents, self.r_cents))[order],
                "kind": kind[order],
                "refund_of": refund_of[order],
                "channel": channel[order].astype(np.uint32),
                "category": category[order].astype(np.uint32),
                "quantity": np.concatenate((self.p_quantity, self.r_quantity))[order],
            }
        )
        # rows are in rank order, so the id of rank r is the id of row r: refunds gather it
        frame = frame.with_columns(_ids("T", pl.col("rank"), w_t).alias("transaction_id"))
        return frame.select(
            pl.col("transaction_id"),
            pl.col("customer_id"),
            _utc(pl.col("time")).alias("occurred_at"),
            (pl.col("cents").cast(AMOUNT_DTYPE) / 100).cast(AMOUNT_DTYPE).alias("amount"),
            pl.lit(P.currency).alias("currency"),
            pl.when(pl.col("kind") == 0)
            .then(pl.lit("purchase"))
            .otherwise(pl.lit("refund"))
            .alias("kind"),
            pl.when(pl.col("refund_of") >= 0)
            .then(pl.col("transaction_id").gather(pl.col("refund_of").clip(0)))
            .alias("refund_of"),
            _names(P.channels, pl.col("channel")).alias("channel"),
            _names(P.categories, pl.col("category")).alias("category"),
            pl.col("quantity"),
        ).cast(TRANSACTION_SCHEMA)

    def feedback(self) -> pl.DataFrame:
        """Survey answers: one per responding buyer, after one of their purchases."""
        P, rng = self.params, self.rngs["feedback"]
        nb = self.buyers.size
        responds = np.flatnonzero(rng.random(nb) < P.feedback_rate)
        pick = np.floor(rng.random(nb) * self.counts).astype(np.int64)
        row = (self.first_row + pick)[responds]
        delay = np.floor(rng.standard_exponential(nb) * (P.survey_delay_days * _DAY_US))
        time = self.p_time[row] + 1 + delay[responds].astype(np.int64)
        owner = self.buyers[responds]
        sat = self.satisfaction[owner]
        owner = self.label[owner]
        # latent answers: satisfaction plus noise, mapped through the configured mixes
        rho = P.satisfaction_feedback_corr
        noise = math.sqrt(1 - rho * rho)
        u_nps = special.ndtr(rho * sat + noise * rng.standard_normal(nb)[responds])
        u_csat = special.ndtr(rho * sat + noise * rng.standard_normal(nb)[responds])
        nps = np.searchsorted(_cumulative(P.nps_weights), u_nps, side="right")
        csat = 1 + np.searchsorted(_cumulative(P.csat_weights), u_csat, side="right")
        survey_names = [name for name, _ in P.survey_mix]
        survey = np.asarray(survey_names)[_draw(rng, _weights(P.survey_mix), nb)][responds]
        has_nps = survey != "csat"
        has_csat = survey != "nps"
        # comments by group: 0 detractor, 1 passive, 2 promoter
        group = np.where(
            has_nps,
            np.where(nps <= 6, 0, np.where(nps <= 8, 1, 2)),
            np.where(csat <= 2, 0, np.where(csat == 3, 1, 2)),
        )
        pools = (P.comments_detractor, P.comments_passive, P.comments_promoter)
        sizes = np.asarray([len(pool) for pool in pools])
        offsets = np.cumsum(sizes) - sizes
        comment = offsets[group] + np.floor(rng.random(nb)[responds] * sizes[group]).astype(
            np.int64
        )
        has_comment = rng.random(nb)[responds] < P.comment_share
        channel = _draw(rng, _weights(P.feedback_channels), nb)[responds]
        keep = time < self.end_us
        order = _argsort(time[keep])
        frame = pl.DataFrame(
            {
                "customer_id": self.customer_ids.gather(owner[keep][order]),
                "time": time[keep][order],
                "nps": np.where(has_nps, nps, -1)[keep][order],
                "csat": np.where(has_csat, csat, -1)[keep][order],
                "comment": np.where(has_comment, comment, -1)[keep][order],
                "channel": channel[keep][order],
            }
        )
        labels = tuple(c for pool in pools for c in pool)
        return frame.select(
            pl.col("customer_id"),
            _utc(pl.col("time")).alias("answered_at"),
            pl.when(pl.col("nps") >= 0).then(pl.col("nps")).alias("nps"),
            pl.when(pl.col("csat") >= 0).then(pl.col("csat")).alias("csat"),
            pl.when(pl.col("comment") >= 0)
            .then(_names(labels, pl.col("comment").clip(0)))
            .alias("comment"),
            _names(P.feedback_channels, pl.col("channel")).alias("channel"),
        ).cast(FEEDBACK_SCHEMA)

    def interactions(self) -> pl.DataFrame:
        """Touchpoints: visits, e-mail opens, support calls and complaints, in time order."""
        P, rng = self.params, self.rngs["interactions"]
        channels = [name for name, _ in P.channels]
        extra = [c for c in ("email", "phone") if c not in channels]
        complaint_names = [name for name, _ in P.complaint_channels]
        extra += [c for c in complaint_names if c not in channels and c not in extra]
        names = (*channels, *extra)
        code = {name: i for i, name in enumerate(names)}
        types = ("visit", "email_open", "support_call", "complaint")
        parts: list[tuple[IntArray, IntArray, IntArray, int]] = []  # owner, time, channel, type

        # visits in the hours before each purchase, in the purchase's channel
        m = self.p_owner.size
        n_visits = rng.poisson(P.visits_per_purchase, m).astype(np.int64)
        row, _ = _group_index(n_visits)
        lead = np.floor(rng.standard_exponential(row.size) * (P.visit_lead_hours * _HOUR_US))
        parts.append(
            (
                self.p_owner[row],
                self.p_time[row] - 1 - lead.astype(np.int64),
                self.p_channel[row],
                0,
            )
        )
        # touchpoints at a constant rate while active: [joined, last purchase] for those who
        # dropped out, [joined, end) for the others
        span_days = (self.active_end_us - self.joined_us) / _DAY_US
        unhappy = 2 * special.ndtr(-self.satisfaction)

        def while_active(rate: FloatArray | float) -> tuple[IntArray, IntArray]:
            count = rng.poisson(rate * span_days).astype(np.int64)
            owner, _ = _group_index(count)
            span = (self.active_end_us - self.joined_us)[owner]
            time = self.joined_us[owner] + np.floor(rng.random(owner.size) * span).astype(np.int64)
            return owner, time

        owner, time = while_active(P.browse_rate_per_day)
        channel = _with_habit(
            rng, _weights(P.channels), P.channel_habit, self.preferred_channel[owner]
        )
        parts.append((owner, time, channel, 0))
        owner, time = while_active(P.email_open_rate_per_day)
        parts.append((owner, time, np.full(owner.size, code["email"]), 1))
        owner, time = while_active(P.support_call_rate_per_day)
        parts.append((owner, time, np.full(owner.size, code["phone"]), 2))
        complaint_codes = np.asarray([code[c] for c in complaint_names], dtype=np.int64)
        owner, time = while_active(P.complaint_rate_per_day * unhappy)
        channel = complaint_codes[_draw(rng, _weights(P.complaint_channels), owner.size)]
        parts.append((owner, time, channel, 3))
        # complaints shortly after the last purchase of those who drop out
        dropped = np.flatnonzero(self.dropout_us >= 0)
        chance = np.minimum(1.0, P.churn_complaint_prob * unhappy[dropped])
        owner = dropped[rng.random(dropped.size) < chance]
        delay = np.floor(
            rng.standard_exponential(owner.size) * (P.churn_complaint_delay_days * _DAY_US)
        )
        time = self.dropout_us[owner] + 1 + delay.astype(np.int64)
        channel = complaint_codes[_draw(rng, _weights(P.complaint_channels), owner.size)]
        parts.append((owner, time, channel, 3))

        time = np.concatenate([p[1] for p in parts])
        keep = np.flatnonzero((time >= self.start_us) & (time < self.end_us))
        keep = keep[_argsort(time[keep])]
        time = time[keep]
        owner = self.label[np.concatenate([p[0] for p in parts])[keep]]
        channel = np.concatenate([p[2].astype(np.int8) for p in parts])[keep]
        kind = np.concatenate([np.full(p[0].size, p[3], dtype=np.int8) for p in parts])[keep]
        del parts, keep
        frame = pl.DataFrame(
            {
                "customer_id": self.customer_ids.gather(owner),
                "time": time,
                "channel": channel,
                "type": kind,
            }
        )
        return frame.select(
            pl.col("customer_id"),
            _utc(pl.col("time")).alias("occurred_at"),
            _names(names, pl.col("channel")).alias("channel"),
            _names(types, pl.col("type")).alias("type"),
        ).cast(INTERACTION_SCHEMA)

    def truth(self) -> pl.DataFrame:
        """Latent values per customer (model values null for prospects)."""
        buyer = ~self.prospect
        repeat = np.zeros(self.n, dtype=np.int64)
        repeat[self.buyers] = self.x
        alive = np.ones(self.n, dtype=bool)
        alive[self.buyers] = self.alive
        o = self.order
        frame = pl.DataFrame(
            {
                "customer_id": self.customer_ids,
                "is_prospect": self.prospect[o],
                "lambda_per_day": self.lam[o],
                "p_dropout": self.p[o],
                "nu": self.nu[o],
                "satisfaction": self.satisfaction[o],
                "preferred_channel": self.preferred_channel[o],
                "repeat_purchases": repeat[o],
                "alive_at_end": alive[o],
                "dropout": self.dropout_us[o],
                "buyer": buyer[o],
            }
        )
        when_buyer = pl.when(pl.col("buyer"))
        return frame.select(
            pl.col("customer_id"),
            pl.col("is_prospect"),
            when_buyer.then(pl.col("lambda_per_day")).alias("lambda_per_day"),
            when_buyer.then(pl.col("p_dropout")).alias("p_dropout"),
            when_buyer.then(pl.col("nu")).alias("nu"),
            when_buyer.then(self.params.spend_p / pl.col("nu")).alias("mean_spend"),
            pl.col("satisfaction"),
            _names(self.params.channels, pl.col("preferred_channel")).alias("preferred_channel"),
            when_buyer.then(pl.col("repeat_purchases")).alias("repeat_purchases"),
            when_buyer.then(pl.col("alive_at_end")).alias("alive_at_end"),
            pl.when(pl.col("dropout") >= 0).then(_utc(pl.col("dropout"))).alias("dropped_out_at"),
        ).cast(TRUTH_SCHEMA)


def _cumulative(weights: tuple[float, ...]) -> FloatArray:
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum /= cum[-1]
    return cum[:-1]  # inner edges: searchsorted(side="right") maps a uniform to 0 .. len - 1


def _utc(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
