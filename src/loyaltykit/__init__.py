"""loyaltykit: run and measure customer-loyalty programs.

The public names are gathered here; the subpackages hold the details:

* :mod:`loyaltykit.core` - typed value objects (customers, transactions, ledger entries);
* :mod:`loyaltykit.plugins` and :mod:`loyaltykit.hookspecs` - the plugin system;
* :mod:`loyaltykit.datasets` - bundled reference data and a synthetic generator.
"""

from importlib.metadata import PackageNotFoundError, version

from loyaltykit.analytics import calibration_and_holdout, summary
from loyaltykit.core import (
    Customer,
    EntryKind,
    Feedback,
    Interaction,
    InteractionType,
    LedgerEntry,
    LineItem,
    Money,
    Program,
    Reward,
    RewardIssue,
    Tier,
    TierChange,
    TierPolicy,
    Transaction,
    TransactionKind,
)
from loyaltykit.engine import Engine, MemoryStore, load_program
from loyaltykit.errors import LoyaltyKitError
from loyaltykit.hookspecs import hookimpl
from loyaltykit.io import (
    LazyReadResult,
    ReadResult,
    read_feedback,
    read_interactions,
    read_transactions,
    scan_feedback,
    scan_interactions,
    scan_transactions,
)
from loyaltykit.plugins import PluginHost, get_host

try:
    __version__ = version("loyaltykit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Customer",
    "Engine",
    "EntryKind",
    "Feedback",
    "Interaction",
    "InteractionType",
    "LazyReadResult",
    "LedgerEntry",
    "LineItem",
    "LoyaltyKitError",
    "MemoryStore",
    "Money",
    "PluginHost",
    "Program",
    "ReadResult",
    "Reward",
    "RewardIssue",
    "Tier",
    "TierChange",
    "TierPolicy",
    "Transaction",
    "TransactionKind",
    "__version__",
    "calibration_and_holdout",
    "get_host",
    "hookimpl",
    "load_program",
    "read_feedback",
    "read_interactions",
    "read_transactions",
    "scan_feedback",
    "scan_interactions",
    "scan_transactions",
    "summary",
]
