"""MBG/NBD: the modified BG/NBD of Batislam, Denizel & Filiztekin (2007).

As :class:`~loyaltykit.models.BetaGeo`, except that a customer may also drop out right after the
first purchase, so customers with no repeat purchase are not all assumed alive.
"""

from __future__ import annotations

from typing import ClassVar

from loyaltykit.models.bgnbd import BetaGeo

__all__ = ["ModifiedBetaGeo"]


class ModifiedBetaGeo(BetaGeo):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007), parameters ``r``, ``alpha``, ``a``, ``b``.

    Same input, options and predictions as :class:`~loyaltykit.models.BetaGeo`.

    >>> from loyaltykit.datasets import load_cdnow_summary
    >>> model = ModifiedBetaGeo().fit(load_cdnow_summary())
    >>> {k: round(v, 3) for k, v in model.params_.items()}
    {'r': 0.525, 'alpha': 6.183, 'a': 0.891, 'b': 1.614}
    """

    _shift: ClassVar[int] = 1
