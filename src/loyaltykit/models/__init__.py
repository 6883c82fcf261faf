"""Buy-till-you-die models of customer purchasing and churn, and customer lifetime value.

Estimators (scikit-learn conventions: ``__init__`` stores options, ``fit(frame)`` returns the
model, learned attributes end in ``_``):

* :class:`BetaGeo` (BG/NBD), :class:`ModifiedBetaGeo` (MBG/NBD) and :class:`ParetoNBD` -
  non-contractual, continuous time; input ``frequency``, ``recency``, ``T``;
* :class:`GammaGamma` - spend per transaction; input ``frequency``, ``monetary_value``;
* :class:`BetaGeoBetaBinom` (BG/BB) - non-contractual, discrete time; input ``frequency``,
  ``recency``, ``periods`` (aggregated with ``weights``);
* :class:`ShiftedBetaGeo` (sBG) - contractual churn; input a cohort survival table
  (``period``, ``alive``) or ``duration`` and ``churned`` per customer.

:func:`customer_lifetime_value` combines a transaction model and a spend model;
:func:`value_tiers` cuts customers into tiers by predicted value. Model checking lives in
:mod:`loyaltykit.models.checking`, plots in :mod:`loyaltykit.models.plot` (``plot`` extra).
"""

from loyaltykit.models._base import TIME_UNIT_NAMES, BTYDModel, Convergence
from loyaltykit.models.bgbb import BetaGeoBetaBinom
from loyaltykit.models.bgnbd import BetaGeo
from loyaltykit.models.clv import (
    clv_column_name,
    customer_lifetime_value,
    period_discount_rate,
    value_tiers,
)
from loyaltykit.models.gamma_gamma import GammaGamma
from loyaltykit.models.mbgnbd import ModifiedBetaGeo
from loyaltykit.models.pareto_nbd import ParetoNBD
from loyaltykit.models.sbg import ShiftedBetaGeo

__all__ = [
    "TIME_UNIT_NAMES",
    "BTYDModel",
    "BetaGeo",
    "BetaGeoBetaBinom",
    "Convergence",
    "GammaGamma",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "ShiftedBetaGeo",
    "clv_column_name",
    "customer_lifetime_value",
    "period_discount_rate",
    "value_tiers",
]
