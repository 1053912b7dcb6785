"""`govern keygen`: create a principal's Ed25519 key pair.

The private key goes to a new owner-only file outside any repository; what is
printed is only the public half, as the entry to add to the roster by review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from governance.cli.output import emit, fail
from governance.errors import GovernanceError
from governance.trust.keys import generate_key_pair, public_key_line, user_key_path, write_private_key
from governance.trust.roster import PRINCIPAL_NAME, RosterError, parse_roles


def keygen(
    principal: Annotated[str, typer.Option("--principal", help="the principal's roster name, e.g. ravi")],
    out: Annotated[
        Path | None, typer.Option("--out", help="private key file (default: ~/.config/govern/keys/NAME.key)")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="a role for the printed roster entry (repeat for several)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Create a principal's Ed25519 key pair; print the roster entry for its public key."""
    role_list = [r.strip() for r in role or [] if r.strip()]
    if not PRINCIPAL_NAME.match(principal):
        fail(f"--principal {principal!r}: use 2-32 characters of a-z, 0-9, '_' or '-', starting with a letter")
    if role_list:  # the roster's own rules, so the printed entry is one the roster accepts
        try:
            parse_roles(role_list, lambda _field, why: RosterError(why))
        except RosterError as exc:
            fail(f"--role: {exc}")
    private, public = generate_key_pair()
    try:
        path = write_private_key(out or user_key_path(principal), private)
    except GovernanceError as exc:
        fail(str(exc))
    entry = {principal: {"roles": role_list, "public_key": public_key_line(public)}}
    result = {
        "principal": principal,
        "key_file": str(path),
        "public_key": public_key_line(public),
        "roles": role_list,
        "roster_entry": entry,
    }
    emit(result, as_json, _human)


def _human(result: dict) -> str:
    entry = yaml.safe_dump(result["roster_entry"], default_flow_style=None, sort_keys=False).rstrip()
    indented = "\n".join("  " + line for line in entry.splitlines())
    hint = "" if result["roles"] else "no --role given: fill in 'roles' before the entry is accepted\n"
    return (
        f"private key written to {result['key_file']} (mode 0600; keep it secret, never commit it)\n{hint}"
        f"add this entry under 'principals:' in the roster and have it reviewed:\n\n{indented}"
    )
