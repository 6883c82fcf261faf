"""Built-in plugin: the BTYD models of :mod:`loyaltykit.models` as scoring models.

Each model class satisfies :class:`loyaltykit.protocols.ScoringModel`: ``fit(frame)`` returns
the model and ``score(frame)`` adds its columns (``probability_alive`` and
``expected_purchases`` for the transaction models, ``expected_spend`` for Gamma-Gamma,
``probability_renewal`` for sBG). Options given to
:meth:`Registry.create <loyaltykit.plugins.Registry.create>` go to the model's ``__init__``.
"""

from __future__ import annotations

from loyaltykit.hookspecs import hookimpl
from loyaltykit.models import (
    BetaGeo,
    BetaGeoBetaBinom,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    ShiftedBetaGeo,
)
from loyaltykit.plugins import Register

MODELS = {
    "bgnbd": (BetaGeo, "BG/NBD purchase and dropout model (Fader, Hardie & Lee 2005)"),
    "mbgnbd": (ModifiedBetaGeo, "MBG/NBD, BG/NBD with dropout at the first purchase too"),
    "pareto_nbd": (ParetoNBD, "Pareto/NBD purchase and lifetime model (Schmittlein et al. 1987)"),
    "gamma_gamma": (GammaGamma, "Gamma-Gamma spend per transaction (Fader, Hardie & Lee 2005)"),
    "bgbb": (BetaGeoBetaBinom, "BG/BB discrete-time purchase and dropout model"),
    "sbg": (ShiftedBetaGeo, "shifted-beta-geometric contractual churn (Fader & Hardie 2007)"),
}
"""Registered name -> (model class, description)."""


@hookimpl
def loyaltykit_register_scoring_models(register: Register) -> None:
    """Register the six BTYD models under the names of :data:`MODELS`."""
    for name, (factory, description) in MODELS.items():
        register(name, factory, description=description)
