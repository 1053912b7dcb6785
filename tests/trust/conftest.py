"""The demo cast (real keys, real roster file) for trust tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance.settings import Settings
from governance.trust.demo import DEMO_CAST, demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from governance.trust.roster import Roster
from governance.trust.statements import Statement, sign

EVIDENCE = "cd" * 32
SUBJECT = {"model": "credit_scoring", "version": "credit_scoring-v3", "evidence_digest": EVIDENCE}


@dataclass(frozen=True)
class Cast:
    roster: Roster
    keys: dict[str, Ed25519PrivateKey]


@pytest.fixture
def cast(settings: Settings) -> Cast:
    roster = Roster.load(demo_principals(settings))
    return Cast(roster, {name: load_private_key(demo_key_path(settings, name)) for name in DEMO_CAST})


def approval(cast: Cast, signer="ravi", principal="ravi", *, valid_for=timedelta(days=7), now=None, **subject):
    """An `approve` statement of SUBJECT (with `subject`'s changes) claiming `principal`, signed by `signer` (a
    cast member's name, or a private key)."""
    statement = Statement.new(
        "approve", SUBJECT | subject, principal, valid_for=valid_for, comment="evidence pack reviewed", now=now
    )
    key = cast.keys[signer] if isinstance(signer, str) else signer
    return sign(statement, key)
