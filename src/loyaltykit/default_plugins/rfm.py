"""Built-in plugin: the RFM scoring model (quantile scores 1-5 and named segments).

Registers :class:`loyaltykit.analytics.rfm.RFM` as the scoring model ``"rfm"``:

>>> from loyaltykit.plugins import get_host
>>> model = get_host().scoring_models.create("rfm", bins=5)
"""

from __future__ import annotations

from loyaltykit.hookspecs import hookimpl
from loyaltykit.plugins import Register


@hookimpl
def loyaltykit_register_scoring_models(register: Register) -> None:
    """Register the RFM scoring model as ``"rfm"``."""
    from loyaltykit.analytics.rfm import RFM

    register(
        "rfm",
        RFM,
        description="RFM quantile scores (recent = high), RFM cell and named segments",
    )
