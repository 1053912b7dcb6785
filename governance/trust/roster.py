"""The roster: who the principals are, their roles and their Ed25519 public keys.

A YAML file, reviewed and versioned like code:

    version: 3
    principals:
      ravi:
        roles: [model_risk_approver]
        public_key: "ed25519:<base64 of the raw 32 bytes>"
        display_name: Ravi (model risk)      # optional

Validated on load; every error names the file, the principal and the field.
The roster says who is who. Whether a principal may take an action is decided by
the Cedar policies, which read the roles from here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.digests import digest_of
from governance.errors import GovernanceError
from governance.trust.keys import PublicKeyError, parse_public_key_line, public_key_line
from governance.yamlfile import read_yaml

BUSINESS_OWNER_ROLE = "business_owner"
HUMAN_ROLES = frozenset(
    {"data_scientist", "model_risk_approver", "ml_platform", BUSINESS_OWNER_ROLE, "compliance_manager", "auditor"}
)
# Signs what the system does by itself (monitoring rollback or kill switch, ledger
# checkpoints, evidence manifests). A machine principal holds no human role.
AUTOMATION_ROLE = "automation"
ROLES = HUMAN_ROLES | {AUTOMATION_ROLE}
PRINCIPAL_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
MAX_DISPLAY_NAME = 80

_PRINCIPAL_FIELDS = {"roles", "public_key", "display_name"}


class RosterError(GovernanceError):
    """The roster file is invalid. The message names file, principal and field."""


class UnknownPrincipal(RosterError):
    """A name that is not in the roster."""


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str]
    public_key: Ed25519PublicKey
    display_name: str | None = None

    @property
    def key_line(self) -> str:
        return public_key_line(self.public_key)

    def document(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"roles": sorted(self.roles), "public_key": self.key_line}
        if self.display_name:
            entry["display_name"] = self.display_name
        return entry


@dataclass(frozen=True)
class Roster:
    """A validated roster. `digest` is the SHA-256 of its canonical content (comments and layout do not count)."""

    path: Path
    version: int
    principals: Mapping[str, Principal]
    digest: str

    @classmethod
    def load(cls, path: str | Path) -> Roster:
        path = Path(path)
        raw = read_yaml(path, RosterError, "roster file", {("principals",): "principal"})
        version, entries = _top_level(path, raw)
        principals = {name: _principal(path, name, body) for name, body in entries.items()}
        _refuse_shared_keys(path, principals)
        document = {"version": version, "principals": {n: p.document() for n, p in principals.items()}}
        return cls(path, version, MappingProxyType(principals), digest_of(document))

    @classmethod
    def write(cls, path: str | Path, *, version: int, principals: Iterable[Principal], header: str = "") -> Roster:
        """Write a roster file atomically (temporary file, then rename) and return it validated."""
        path = Path(path)
        document = {"version": version, "principals": {p.name: p.document() for p in principals}}
        comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        text = comment + yaml.safe_dump(document, sort_keys=True, default_flow_style=None, allow_unicode=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        return cls.load(path)

    def principal(self, name: str) -> Principal:
        try:
            return self.principals[name]
        except KeyError:
            raise UnknownPrincipal(f"{self.path}: no principal {name!r} in roster version {self.version}") from None


def _top_level(path: Path, raw: Any) -> tuple[int, dict]:
    if not isinstance(raw, dict):
        raise RosterError(f"{path}: expected a mapping with 'version' and 'principals' at the top")
    unknown = set(raw) - {"version", "principals"}
    if unknown:
        raise RosterError(f"{path}: unknown top-level field(s): {', '.join(sorted(map(str, unknown)))}")
    version = raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RosterError(f"{path}: field 'version': expected a whole number >= 1, got {version!r}")
    entries = raw.get("principals")
    if entries is None:
        raise RosterError(f"{path}: field 'principals' is missing (use 'principals: {{}}' for none)")
    if not isinstance(entries, dict):
        raise RosterError(f"{path}: field 'principals': expected a mapping of principal name to entry")
    return version, entries


def _principal(path: Path, name: Any, body: Any) -> Principal:
    if not isinstance(name, str) or not PRINCIPAL_NAME.match(name):
        raise RosterError(
            f"{path}: principal {name!r}: name must be 2-32 characters of a-z, 0-9, '_' or '-', starting with a letter"
        )

    def bad(field: str, problem: str) -> RosterError:
        return RosterError(f"{path}: principal {name!r}: field {field!r}: {problem}")

    if not isinstance(body, dict):
        raise RosterError(f"{path}: principal {name!r}: expected a mapping with 'roles' and 'public_key'")
    unknown = set(body) - _PRINCIPAL_FIELDS
    if unknown:
        raise RosterError(f"{path}: principal {name!r}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    for field in ("roles", "public_key"):
        if field not in body:
            raise bad(field, "missing")
    roles = parse_roles(body["roles"], bad)
    try:
        public_key = parse_public_key_line(body["public_key"])
    except PublicKeyError as exc:
        raise bad("public_key", str(exc)) from None
    display_name = body.get("display_name")
    if display_name is not None and (
        not isinstance(display_name, str) or not 0 < len(display_name) <= MAX_DISPLAY_NAME
    ):
        raise bad("display_name", f"expected text of 1 to {MAX_DISPLAY_NAME} characters")
    return Principal(name, roles, public_key, display_name)


def parse_roles(value: Any, bad) -> frozenset[str]:
    """A principal's roles, or `bad(field, why)` raised: known roles, none twice, automation alone."""
    if not isinstance(value, list) or not value:
        raise bad("roles", f"expected a non-empty list of roles ({', '.join(sorted(ROLES))})")
    for role in value:
        if role not in ROLES:
            raise bad("roles", f"unknown role {role!r} (known: {', '.join(sorted(ROLES))})")
    if len(set(value)) != len(value):
        raise bad("roles", "a role is listed twice")
    if AUTOMATION_ROLE in value and len(value) > 1:
        raise bad("roles", f"{AUTOMATION_ROLE!r} is for machine principals and cannot be combined with human roles")
    return frozenset(value)


def _refuse_shared_keys(path: Path, principals: Mapping[str, Principal]) -> None:
    """One key per principal: a shared key would let one person sign as two and defeat separation of duties."""
    owner_of: dict[str, str] = {}
    for name, principal in principals.items():
        other = owner_of.setdefault(principal.key_line, name)
        if other != name:
            raise RosterError(f"{path}: principal {name!r}: field 'public_key': same key as principal {other!r}")
