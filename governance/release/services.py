"""The stores and rules a release action needs, opened once from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.config import GovernanceConfig, GovernedModel, load_config
from governance.control import ControlStore
from governance.ledger import Ledger
from governance.policy.bundle import PolicyBundle
from governance.registry import ModelRegistry
from governance.settings import Settings
from governance.trust.keys import load_private_key
from governance.trust.roster import Roster
from governance.trust.store import StatementStore

T = TypeVar("T")
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
        """As the file is now: who may sign is decided by the roster of the moment (parsed again on change)."""
        return _current(self.settings.roster_path, Roster.load)

    @property
    def policies(self) -> PolicyBundle:
        """As the files are now: decisions follow the policy files in force (parsed again on change)."""
        return _current(self.settings.policies_dir, PolicyBundle.load)

    @property
    def config(self) -> GovernanceConfig:
        """The governed models' configuration, parsed again only when the file changed: serving's follower asks at
        every poll (the business owner behind a kill-switch flip or an approval), and a parse costs about 8 ms
        (37 ms at 50 models: `govern status` parses it once, here, where it parsed it twice)."""
        return _current(self.settings.config_path, load_config)

    def governed_model(self, model: str) -> GovernedModel:
        """The model's configuration; ConfigError (naming the governed models) if it is not governed here."""
        return self.config.model(model)

    def system_key(self) -> Ed25519PrivateKey:
        """The `system` principal's key, for automated actions."""
        return load_private_key(self.settings.system_key_path)


_PARSED: dict[Path, tuple[tuple, Any]] = {}


def _current(path: Path, load: Callable[[Path], T]) -> T:
    """`load(path)`, parsed again only when a file under `path` changed (name, size or modification time).

    Serving verifies the signed record every second; parsing the roster and the Cedar bundle each time cost
    56 ms of the 67 ms a check took (measured on the lineage world), and both change rarely."""
    stamp = _stamp(path)
    cached = _PARSED.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = load(path)
    _PARSED[path] = (stamp, loaded)
    return loaded


def _stamp(path: Path) -> tuple:
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ()  # unreadable: `load` says why
