"""The typed core: value objects shared by every part of loyaltykit."""

from loyaltykit.core.ledger import EntryKind, LedgerEntry, RewardIssue, TierChange
from loyaltykit.core.records import (
    Customer,
    Feedback,
    Interaction,
    InteractionType,
    LineItem,
    Money,
    Transaction,
    TransactionKind,
)

__all__ = [
    "Customer",
    "EntryKind",
    "Feedback",
    "Interaction",
    "InteractionType",
    "LedgerEntry",
    "LineItem",
    "Money",
    "RewardIssue",
    "TierChange",
    "Transaction",
    "TransactionKind",
]
