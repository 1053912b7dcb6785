"""The signed `govern` commands a page offers for an action: run where the person's private key is.

The console never takes a key or an action. Each command signs a statement with the key on the person's own
machine (`--key`, default ~/.config/govern/keys/NAME.key) and goes through the same checks as every action.
"""

from __future__ import annotations

import shlex

from governance.release.approvals import ApprovalRequest

YOU = "YOUR_NAME"


def _line(*words: str) -> str:
    return " ".join(w if w == YOU else shlex.quote(w) for w in words)


def approve(request: ApprovalRequest) -> str:
    return _line(
        "govern", "approve", request.model, request.version, "--as", YOU, "--evidence", request.pack_digest,
        "--comment", "what you reviewed",
    )  # fmt: skip


def reject(request: ApprovalRequest) -> str:
    return _line(
        "govern", "reject", request.model, request.version, "--as", YOU, "--evidence", request.pack_digest,
        "--comment", "why",
    )  # fmt: skip


def rollback(model: str) -> str:
    return _line("govern", "rollback", model, "--as", YOU, "--reason", "why")


def kill_switch(model: str, on: bool) -> str:
    return _line("govern", "disable" if on else "enable", model, "--as", YOU, "--reason", "why")
