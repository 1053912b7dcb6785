"""Authorisation of governance actions (approve, reject, deploy, rollback, disable, enable, waive, train, read).

`authorize` asks Cedar whether a roster principal may take an action on a model
or model version. Deny by default: a principal missing from the roster, no
permit that applies, any forbid that applies, or any error while evaluating
a rule is a denial, with the reasons.

A roster principal holding the "automation" role is the Cedar `System`
principal; everyone else is a `Person`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cedarpy

from governance.policy.bundle import SCHEMA_FILE, PolicyBundle, PolicyError
from governance.policy.evidence import RISK_TIERS

if TYPE_CHECKING:
    from governance.trust.roster import Roster

SYSTEM_ROLE = "automation"


@dataclass(frozen=True)
class ModelSubject:
    """A governed model: the subject of rollback, disable, enable, train and read. `business_owner` is the
    roster principal its config names (owners.business_owner): the business-owner role acts on its own models
    only, so a subject built without it gives that role nothing."""

    model: str
    business_owner: str | None = None

    def entities(self) -> list[dict]:
        owner = {} if self.business_owner is None else {"business_owner": self.business_owner}
        return [{"uid": self.uid(), "attrs": {"name": self.model, **owner}, "parents": []}]

    def uid(self) -> dict[str, str]:
        return {"type": "Model", "id": self.model}

    def describe(self) -> str:
        return self.model


@dataclass(frozen=True)
class VersionSubject:
    """One model version: the subject of approve, reject, deploy, waive (and read). `requested_by` holds the
    verified requesters only (`governance.release.requests`); empty means nobody is known to have asked.
    `named_requesters` are named by request entries whose signed statement no longer verifies (its row deleted
    or altered): they do not make the requester known, but may have asked, so Cedar sees them among
    `requested_by` and keeps them from approving or waiving the version."""

    model: str
    version: str
    risk_tier: str
    trained_by: Sequence[str] = field(default_factory=tuple)
    requested_by: Sequence[str] = field(default_factory=tuple)
    business_owner: str | None = None
    named_requesters: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.risk_tier not in RISK_TIERS:
            raise PolicyError(f"{self.describe()}: risk tier {self.risk_tier!r} is not one of {', '.join(RISK_TIERS)}")

    def entities(self) -> list[dict]:
        attrs = {
            "model": self.model,
            "version": self.version,
            "risk_tier": self.risk_tier,
            "trained_by": list(self.trained_by),
            "requested_by": sorted({*self.requested_by, *self.named_requesters}),
            "requester_known": bool(self.requested_by),
            **({} if self.business_owner is None else {"business_owner": self.business_owner}),
        }
        model = ModelSubject(self.model, self.business_owner)
        return [{"uid": self.uid(), "attrs": attrs, "parents": [model.uid()]}, *model.entities()]

    def uid(self) -> dict[str, str]:
        return {"type": "ModelVersion", "id": f"{self.model}/{self.version}"}

    def describe(self) -> str:
        return f"{self.model} version {self.version}"


Subject = ModelSubject | VersionSubject


@dataclass(frozen=True)
class AuthzDecision:
    allowed: bool
    principal: str
    action: str
    subject: str
    reasons: tuple[str, ...]  # the messages of the rules that decided, or why nothing did
    rules: tuple[str, ...]  # ids of the rules that decided
    policy_digest: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "principal": self.principal,
            "action": self.action,
            "subject": self.subject,
            "reasons": list(self.reasons),
            "rules": list(self.rules),
            "policy_digest": self.policy_digest,
        }


def authorize(
    bundle: PolicyBundle,
    roster_roles: Mapping[str, Sequence[str]],
    principal: str,
    action: str,
    subject: Subject,
    context: Mapping[str, Any] | None = None,
) -> AuthzDecision:
    """May `principal` (with roles from `roster_roles`, name -> roles) take `action` on `subject`?"""

    def decision(allowed: bool, reasons: list[str], rules: tuple[str, ...] = ()) -> AuthzDecision:
        return AuthzDecision(allowed, principal, action, subject.describe(), tuple(reasons), rules, bundle.digest)

    if principal not in roster_roles:
        return decision(False, [f"{principal!r} is not a principal of the roster"])
    roles = list(roster_roles[principal])
    entities = _entities(bundle, principal, roles, subject)
    request = {
        "principal": _principal_uid(principal, roles),
        "action": {"type": "Action", "id": action},
        "resource": subject.uid(),
        "context": dict(context or {}),
    }
    result = cedarpy.is_authorized(request, bundle.policies, entities, schema=bundle.schema)
    if result.decision == cedarpy.Decision.NoDecision:
        raise PolicyError(
            f"cannot ask Cedar whether {principal} may {action} {subject.describe()}: "
            + "; ".join(result.diagnostics.errors)
        )
    rules = tuple(rule_id for rule_id in bundle.rules if rule_id in set(result.diagnostics.reasons))
    reasons = [bundle.rules[rule_id].message for rule_id in rules]
    errors = [f"rule could not be evaluated, so {action} is denied: {error}" for error in result.diagnostics.errors]
    if not result.allowed and not rules:
        reasons.append(
            f"no rule permits {principal} (roles: {', '.join(roles) or 'none'}) to {action} {subject.describe()}"
        )
    return decision(result.allowed and not errors, reasons + errors, rules)


def roles_of(roster: Roster) -> dict[str, list[str]]:
    """The roster as `authorize` reads it: principal name -> roles."""
    return {name: sorted(principal.roles) for name, principal in roster.principals.items()}


def approval_context(signed_at: datetime, now: datetime, approvers: int = 1) -> dict[str, int]:
    """Context of an `approve` request: the approval's age in whole hours, rounded up, and how many different
    principals' approvals of the same evidence stand (this one included)."""
    return {"approval_age_hours": math.ceil((now - signed_at) / timedelta(hours=1)), "approvers": approvers}


def _principal_uid(name: str, roles: list[str]) -> dict[str, str]:
    return {"type": "System" if SYSTEM_ROLE in roles else "Person", "id": name}


def _entities(bundle: PolicyBundle, principal: str, roles: list[str], subject: Subject) -> cedarpy.Entities:
    unknown = sorted(set(roles) - bundle.roles)
    if unknown:
        raise PolicyError(
            f"principal {principal!r} has role(s) {', '.join(unknown)} not declared in "
            f"{bundle.directory / SCHEMA_FILE} (declared: {', '.join(sorted(bundle.roles))})"
        )
    principal_entity = {
        "uid": _principal_uid(principal, roles),
        "attrs": {"name": principal},
        "parents": [{"type": "Role", "id": role} for role in roles],
    }
    try:
        return cedarpy.Entities.from_json_str(json.dumps([principal_entity, *subject.entities()]), bundle.schema)
    except ValueError as exc:
        raise PolicyError(
            f"{subject.describe()}: subject does not conform to {bundle.directory / SCHEMA_FILE} ({exc})"
        ) from None
