"""The demo cast (real keys, real roster file) for trust tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.settings import Settings
from governance.trust.demo import DEMO_CAST, demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from governance.trust.roster import Roster


@dataclass(frozen=True)
class Cast:
    roster: Roster
    keys: dict[str, Ed25519PrivateKey]


@pytest.fixture
def cast(settings: Settings) -> Cast:
    roster = Roster.load(demo_principals(settings))
    return Cast(roster, {name: load_private_key(demo_key_path(settings, name)) for name in DEMO_CAST})
