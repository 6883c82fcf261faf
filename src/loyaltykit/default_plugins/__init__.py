"""Built-in plugins: registered on the same manager as third-party plugins.

Each module listed in :data:`DEFAULT_PLUGINS` implements registration hooks of
:mod:`loyaltykit.hookspecs`, exactly as an installed plugin would.
"""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "loyaltykit.default_plugins.btyd",
    "loyaltykit.default_plugins.earning",
    "loyaltykit.default_plugins.rfm",
    "loyaltykit.default_plugins.tiers",
)
"""Module names of the built-in plugins, registered in this order."""
