"""Events and URLs shared by the ledger tests."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

TEMPLATE_SIZE = 600  # two complete 256-entry blocks, a level-9 node and a partial block
ACTIONS = ["data.snapshot", "validation.result", "model.registered", "gate.decision", "approval.granted"]


def event(i: int) -> dict:
    return {
        "actor": "system:release_gate" if i % 5 else "alice",
        "action": ACTIONS[i % len(ACTIONS)],
        "subject": {"model": "taiwan_default" if i % 3 == 0 else "credit_default", "version": str(1 + i // 100)},
        "digests": {"evidence": sha256(str(i).encode()).hexdigest()},
        "payload": {"i": i, "outcome": "pass" if i % 7 else "blocked"},
    }


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
