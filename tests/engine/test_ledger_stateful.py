"""The ledger state machine on the in-memory store, under both negative-balance policies."""

from __future__ import annotations

from ledger_machine import ledger_machine

from loyaltykit.engine import MemoryStore

TestLedgerDebt = ledger_machine(MemoryStore, "debt").TestCase
TestLedgerClamp = ledger_machine(MemoryStore, "clamp").TestCase
