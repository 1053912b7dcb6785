"""The stores and rules a release action needs, opened once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.config import GovernedModel, load_config
from governance.control import ControlStore
from governance.ledger import Ledger
from governance.policy.bundle import PolicyBundle
from governance.registry import ModelRegistry
from governance.settings import Settings
from governance.trust.keys import load_private_key
from governance.trust.roster import Roster
from governance.trust.store import StatementStore

SYSTEM = "system"


@dataclass
class Services:
    settings: Settings

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger.for_settings(self.settings)

    @cached_property
    def statements(self) -> StatementStore:
        return StatementStore(self.settings.ledger_url, self.ledger)

    @cached_property
    def control(self) -> ControlStore:
        return ControlStore.for_settings(self.settings)

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry.for_settings(self.settings)

    @property
    def roster(self) -> Roster:
        """Loaded on every use: who may sign is decided by the roster of the moment."""
        return Roster.load(self.settings.roster_path)

    @property
    def policies(self) -> PolicyBundle:
        """Loaded on every use: decisions follow the policy files in force now."""
        return PolicyBundle.load(self.settings.policies_dir)

    def governed_model(self, model: str) -> GovernedModel:
        """The model's configuration; ConfigError (naming the governed models) if it is not governed here."""
        return load_config(self.settings.config_path).model(model)

    def system_key(self) -> Ed25519PrivateKey:
        """The `system` principal's key, for automated actions."""
        return load_private_key(self.settings.system_key_path)
