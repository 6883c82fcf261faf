"""Clear errors for bad input and failed fits; the models as built-in scoring-model plugins."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from loyaltykit.datasets import load_cdnow_summary, load_donations, load_sbg_retention
from loyaltykit.errors import ConvergenceError, ModelInputError, NotFittedError
from loyaltykit.models import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    ShiftedBetaGeo,
)
from loyaltykit.plugins import PluginHost
from loyaltykit.protocols import ScoringModel

CDNOW = load_cdnow_summary(with_monetary=True)


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo, ParetoNBD, GammaGamma, BetaGeoBetaBinom])
def test_not_fitted(cls: type[BetaGeo]) -> None:
    model = cls()
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _ = model.params_
    with pytest.raises(NotFittedError):
        model.score(CDNOW)
    assert repr(model).endswith("(unfitted)")


def test_from_params_has_no_fit_statistics() -> None:
    model = BetaGeo.from_params(r=0.2, alpha=4.0, a=0.8, b=2.4)
    assert model.params_ == {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4}
    with pytest.raises(NotFittedError, match="from_params"):
        _ = model.log_likelihood_
    with pytest.raises(NotFittedError, match="from_params"):
        _ = model.standard_errors_
    with pytest.raises(ModelInputError, match="expected exactly"):
        BetaGeo.from_params(r=1.0, alpha=1.0, a=1.0)
    with pytest.raises(ModelInputError, match="positive"):
        BetaGeo.from_params(r=1.0, alpha=-1.0, a=1.0, b=1.0)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pl.DataFrame({"frequency": [1], "recency": [2.0]}), r"missing column\(s\) \['T'\]"),
        (pl.DataFrame({"frequency": [1], "recency": [5.0], "T": [4.0]}), "must be >= recency"),
        (pl.DataFrame({"frequency": [-1], "recency": [0.0], "T": [4.0]}), "whole number"),
        (pl.DataFrame({"frequency": [1.5], "recency": [1.0], "T": [4.0]}), "whole number"),
        (pl.DataFrame({"frequency": [0], "recency": [1.0], "T": [4.0]}), "recency must be 0"),
        (pl.DataFrame({"frequency": [1, 1], "recency": [None, 1.0], "T": [4.0, 4.0]}), "null"),
        (pl.DataFrame({"frequency": [1], "recency": [float("nan")], "T": [4.0]}), "finite"),
        (pl.DataFrame({"frequency": ["1"], "recency": [1.0], "T": [4.0]}), "numeric"),
        (pl.DataFrame({"frequency": [0], "recency": [0.0], "T": [-1.0]}), "must be >= recency"),
    ],
)
def test_bad_summaries_are_refused_with_the_row(frame: pl.DataFrame, match: str) -> None:
    with pytest.raises(ModelInputError, match=match):
        BetaGeo().fit(frame)
    with pytest.raises(ModelInputError, match=match):
        ParetoNBD.from_params(r=1.0, alpha=1.0, s=1.0, beta=1.0).probability_alive(frame)


def test_not_a_frame() -> None:
    with pytest.raises(ModelInputError, match="polars DataFrame"):
        BetaGeo().fit({"frequency": [1]})


def test_spend_and_discrete_models_refuse_bad_input() -> None:
    with pytest.raises(ModelInputError, match="monetary_value"):
        GammaGamma().fit(pl.DataFrame({"frequency": [1, 2], "monetary_value": [5.0, -1.0]}))
    with pytest.raises(ModelInputError, match="no row with frequency > 0"):
        GammaGamma().fit(pl.DataFrame({"frequency": [0], "monetary_value": [0.0]}))
    with pytest.raises(ModelInputError, match="between frequency and periods"):
        BetaGeoBetaBinom().fit(pl.DataFrame({"frequency": [3], "recency": [2], "periods": [6]}))
    with pytest.raises(ModelInputError, match="without gaps"):
        ShiftedBetaGeo().fit(pl.DataFrame({"period": [0, 2], "alive": [10, 5]}))
    with pytest.raises(ModelInputError, match="never increase"):
        ShiftedBetaGeo().fit(pl.DataFrame({"period": [0, 1, 2], "alive": [10, 5, 6]}))
    with pytest.raises(ModelInputError, match="survival table"):
        ShiftedBetaGeo().fit(pl.DataFrame({"x": [1]}))


def test_unidentified_data_raise_convergence_error_with_advice() -> None:
    no_repeats = pl.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0, 0], "T": [5.0, 6, 7]})
    with pytest.raises(ConvergenceError, match="do not identify") as info:
        BetaGeo().fit(no_repeats)
    assert "penalizer_coef" in str(info.value)


def test_failed_refit_keeps_previous_fit() -> None:
    model = BetaGeo().fit(CDNOW)
    before = model.params_
    with pytest.raises(ConvergenceError):
        model.fit(pl.DataFrame({"frequency": [0, 0], "recency": [0.0, 0], "T": [5.0, 6]}))
    assert model.params_ == before


def test_penalizer_shrinks_parameters() -> None:
    plain = BetaGeo().fit(CDNOW)
    penalised = BetaGeo(penalizer_coef=0.01).fit(CDNOW)
    assert penalised.params_["alpha"] < plain.params_["alpha"]


def test_initial_params_validated() -> None:
    with pytest.raises(ModelInputError, match="unknown"):
        BetaGeo(initial_params={"zz": 1.0}).fit(CDNOW)
    fitted = BetaGeo(initial_params={"r": 1.0, "alpha": 1.0}).fit(CDNOW)
    assert round(fitted.params_["r"], 3) == 0.243


def test_builtin_scoring_models_registered(plugin_host: PluginHost) -> None:
    registry = plugin_host.scoring_models
    for name in ("bgnbd", "mbgnbd", "pareto_nbd", "gamma_gamma", "bgbb", "sbg"):
        entry = registry.get(name)
        assert entry.plugin == "loyaltykit.default_plugins.btyd"
        assert entry.description
    model = registry.create("bgnbd", time_unit="W")
    assert isinstance(model, ScoringModel)
    assert model.time_unit == "W"
    scored = model.fit(CDNOW).score(CDNOW.lazy())
    assert isinstance(scored, pl.LazyFrame)
    got = scored.collect()
    assert {"probability_alive", "expected_purchases"} <= set(got.columns)
    assert got.height == CDNOW.height
    spend = registry.create("gamma_gamma").fit(CDNOW).score(CDNOW)
    assert "expected_spend" in spend.columns
    bgbb = registry.create("bgbb").fit(load_donations()).score(load_donations())
    assert "probability_alive" in bgbb.columns
    table = load_sbg_retention().filter(pl.col("period") <= 7)
    sbg = registry.create("sbg").fit(table)
    out = sbg.score(pl.DataFrame({"duration": [1, 4], "churned": [False, True]}))
    assert out["probability_renewal"][1] == 0.0


def test_importing_the_models_stays_light() -> None:
    """scipy.stats, scipy.optimize and scipy.linalg are slow to import: the models load them only
    when a fit or a quadrature needs them."""
    import subprocess
    import sys

    code = (
        "import sys, loyaltykit, loyaltykit.models; "
        "print(sorted(m for m in ('scipy.stats', 'scipy.optimize', 'scipy.linalg') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_non_finite_start_raises_with_advice() -> None:
    class Broken(BetaGeo):
        def _total(
            self, params: np.ndarray, data: dict[str, np.ndarray]
        ) -> tuple[float, np.ndarray]:
            return math.nan, np.full(4, math.nan)

    frame = pl.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 3.0, 9.0], "T": [10.0] * 3})
    with pytest.raises(ConvergenceError, match="not finite at the starting values"):
        Broken().fit(frame)
