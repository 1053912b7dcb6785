"""`LedgerResource`: the state dir's audit ledger, for the assets and sensors that record or read governance events."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import dagster as dg

from governance.console.links import console_base, ledger_entry_url
from governance.events import Event
from governance.ledger import Ledger
from resources.state import GovernanceResource


class LedgerResource(dg.ConfigurableResource):
    """The audit ledger of the state `governance` names. `record` appends a typed governance event and gives the
    metadata that links a materialization to its entry; `store` is the core's `Ledger`, for reading events and for
    the core functions that take one."""

    governance: GovernanceResource

    @cached_property
    def store(self) -> Ledger:
        return Ledger.for_settings(self.governance.settings)

    def record(self, event: Event) -> dict[str, Any]:
        """Append `event`; returns the metadata that links the materialization to its entry."""
        entry = self.store.append(event)
        return self.links(entry.entry_hash, entry.seq)

    def links(self, entry_hash: str, seq: int) -> dict[str, Any]:
        """Metadata naming a ledger entry, with its console page (the entry, its inclusion proof and whether both
        verify)."""
        return {
            "ledger_entry": entry_hash,
            "ledger_seq": dg.MetadataValue.text(str(seq)),  # an identifier: text, so the UI does not plot it
            "ledger_link": dg.MetadataValue.url(ledger_entry_url(seq, console_base(self.governance.settings))),
        }
