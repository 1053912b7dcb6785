"""Fixtures for the ledger tests: a real 600-entry SQLite ledger file, copied fresh per test (`verifying`, the
ledger verified in one process and in two, is in tests/conftest.py: the attack suite verifies both ways too)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_support import TEMPLATE_SIZE, event, sqlite_url

from governance.ledger import Ledger


@pytest.fixture(scope="session")
def ledger_template(tmp_path_factory) -> Path:
    """Built once through both append paths: batches and single appends across block boundaries."""
    path = tmp_path_factory.mktemp("ledger-template") / "governance.db"
    ledger = Ledger(sqlite_url(path))
    ledger.append_records([event(i) for i in range(250)])
    for i in range(250, 260):
        ledger.append_record(**event(i))
    ledger.append_records([event(i) for i in range(260, TEMPLATE_SIZE)])
    return path


@pytest.fixture
def ledger_file(ledger_template: Path, settings) -> Path:
    """A private copy of the template at the `settings` fixture's ledger location."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "governance.db"
    with closing(sqlite3.connect(ledger_template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return path


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()
