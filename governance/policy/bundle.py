"""Loading the policy bundle: the Cedar schema and every policy file of `policies/`.

`PolicyBundle.load(directory)` reads `schema.cedarschema` and every `*.cedar`
file, validates each file against the schema and checks every rule's
annotations. Any problem (syntax error, unknown attribute, type error, missing
or duplicate @id, missing @message, a gate rule with no readable threshold)
fails the whole load with a message naming file and line; nothing is loaded.

Annotations every policy carries:
  @id("concern.rule")  stable rule id; also the rule's Cedar policy id, so
                       Cedar's decisions name rules directly
  @message("...")      what a person reads when the rule decides
  @unwaivable          (gate rules only) no waiver can set the rule aside

`bundle.digest` is the SHA-256 of the canonical JSON mapping each file name to
the SHA-256 of its bytes: it changes when any file changes, is added,
removed or renamed, and is recorded with every decision.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cedarpy

from governance.digests import digest_of, sha256_hex
from governance.errors import GovernanceError
from governance.policy.source import backticked, line_mentioning, statement_lines, syntax_error_line
from governance.policy.thresholds import Check, rule_checks

SCHEMA_FILE = "schema.cedarschema"
GATE_ACTION = "promote"
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_ANNOTATIONS = {"id", "message", "unwaivable"}
_UNRESOLVED = re.compile(r"failed to resolve types?: (.*)")
_ROLE_ENUM = re.compile(r"\bentity\s+Role\s+enum\s*\[(.*?)\]", re.DOTALL)


class PolicyError(GovernanceError):
    """A policy file is invalid, or Cedar could not be asked. Names file and line where there is one."""


@dataclass(frozen=True)
class Rule:
    """One policy of the bundle, by its @id."""

    id: str
    message: str
    location: str  # "file:line"
    effect: str  # "permit" | "forbid"
    actions: tuple[str, ...]
    unwaivable: bool
    checks: tuple[Check, ...]

    @property
    def is_gate_rule(self) -> bool:
        return self.effect == "forbid" and GATE_ACTION in self.actions


@dataclass(frozen=True, eq=False)
class PolicyBundle:
    """A validated, immutable set of policies with the schema they were checked against."""

    directory: Path
    digest: str
    file_digests: Mapping[str, str]  # file name -> SHA-256 of the bytes that were loaded
    rules: Mapping[str, Rule]
    roles: frozenset[str]
    schema: cedarpy.Schema
    policies: cedarpy.PolicySet
    gate_permits: cedarpy.PolicySet  # the promote permits alone: asked again once waived rules are set aside

    @classmethod
    def load(cls, directory: str | Path) -> PolicyBundle:
        directory = Path(directory)
        files = _read_files(directory)
        texts = {name: _decode(directory / name, data) for name, data in files.items()}
        schema_text = texts.pop(SCHEMA_FILE)
        schema = _parse_schema(directory / SCHEMA_FILE, schema_text)
        roles = _declared_roles(directory / SCHEMA_FILE, schema_text)
        problems: list[str] = []
        entries: list[tuple[Rule, dict]] = []
        for name, text in texts.items():
            entries += _load_file(directory / name, text, schema, problems)
        _check_unique(entries, problems)
        if problems:
            raise PolicyError(f"policies in {directory} not loaded:\n  " + "\n  ".join(problems))
        everything = {rule.id: est for rule, est in entries}
        gate_permits = {
            rule.id: est for rule, est in entries if rule.effect == "permit" and GATE_ACTION in rule.actions
        }
        file_digests = {name: sha256_hex(data) for name, data in files.items()}
        return cls(
            directory=directory,
            digest=digest_of(file_digests),
            file_digests=MappingProxyType(file_digests),
            rules=MappingProxyType({rule.id: rule for rule, _ in entries}),
            roles=roles,
            schema=schema,
            policies=_policy_set(everything),
            gate_permits=_policy_set(gate_permits),
        )

    def rule(self, rule_id: str) -> Rule:
        try:
            return self.rules[rule_id]
        except KeyError:
            raise PolicyError(
                f"unknown rule {rule_id!r} (policies in {self.directory}, digest {self.digest[:12]})"
            ) from None

    @property
    def gate_rules(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules.values() if rule.is_gate_rule)


def _read_files(directory: Path) -> dict[str, bytes]:
    """The schema and every *.cedar file, read once, by name in sorted order."""
    if not (directory / SCHEMA_FILE).is_file():
        raise PolicyError(f"{directory / SCHEMA_FILE}: schema file not found")
    names = sorted(path.name for path in directory.glob("*.cedar"))
    if not names:
        raise PolicyError(f"{directory}: no *.cedar policy files")
    return {name: (directory / name).read_bytes() for name in [SCHEMA_FILE, *names]}


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _parse_schema(path: Path, text: str) -> cedarpy.Schema:
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as exc:
        message = str(exc)
        unresolved = _UNRESOLVED.match(message)
        if unresolved:
            line = line_mentioning(text, [name.strip() for name in unresolved.group(1).split(",")])
        else:
            line = syntax_error_line(text, cedarpy.Schema.from_str, message)
        raise PolicyError(f"{path}:{line}: {message}") from None


def _declared_roles(path: Path, text: str) -> frozenset[str]:
    match = _ROLE_ENUM.search(text)
    if not match:
        raise PolicyError(f"{path}: must declare the roles as `entity Role enum [...]`")
    return frozenset(re.findall(r'"([^"]+)"', match.group(1)))


def _load_file(path: Path, text: str, schema: cedarpy.Schema, problems: list[str]) -> list[tuple[Rule, dict]]:
    """Parse and validate one policy file; append its problems; return its rules with their EST."""
    try:
        parsed = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        problems.append(
            f"{path}:{syntax_error_line(text, cedarpy.policies_to_json_str, str(exc))}: syntax error: {exc}"
        )
        return []
    if parsed["templates"]:
        problems.append(f"{path}: policy templates (?principal, ?resource) are not supported")
        return []
    policies = [est for _, est in sorted(parsed["staticPolicies"].items(), key=lambda item: _position(item[0]))]
    starts = statement_lines(text)
    if len(starts) != len(policies):
        problems.append(f"{path}: found {len(starts)} statements but Cedar parsed {len(policies)} policies")
        return []
    ends = [start - 1 for start in starts[1:]] + [None]
    validation = cedarpy.validate_policies(text, schema)
    invalid = set()
    for error in validation.errors:
        index = _position(error.policy_id)
        invalid.add(index)
        line = line_mentioning(text, backticked(error.error), starts[index], ends[index])
        problems.append(f"{path}:{line}: {error.error}")
    entries = []
    for index, (start, est) in enumerate(zip(starts, policies)):
        if index in invalid:  # reported above; its thresholds may not even parse (a malformed decimal literal)
            continue
        rule, rule_problems = _rule(f"{path}:{start}", est)
        problems += rule_problems
        if rule is not None:
            entries.append((rule, est))
    return entries


def _position(policy_id: str) -> int:
    """Cedar names the policies of a text policy0, policy1, ... in order of appearance."""
    return int(policy_id.removeprefix("policy"))


def _rule(location: str, est: dict) -> tuple[Rule | None, list[str]]:
    annotations = est.get("annotations", {})
    rule_id, message = annotations.get("id"), annotations.get("message")
    problems = [
        f"{location}: unknown annotation @{key} (known: @id, @message, @unwaivable)"
        for key in sorted(set(annotations) - _ANNOTATIONS)
    ]
    if not rule_id:
        problems.append(f'{location}: rule without @id("concern.rule")')
    elif not _RULE_ID.match(rule_id):
        problems.append(f"{location}: @id {rule_id!r} is not of the form concern.rule (lower case, dotted)")
    if not message:
        problems.append(f'{location}: rule {rule_id or "(no id)"} has no @message("...") for people to read')
    actions = _actions(est["action"])
    if actions is None:
        problems.append(
            f"{location}: rule {rule_id or '(no id)'} must name its action(s) (action == ... or action in [...])"
        )
    rule = Rule(
        id=rule_id or "",
        message=message or "",
        location=location,
        effect=est["effect"],
        actions=actions or (),
        unwaivable="unwaivable" in annotations,
        checks=rule_checks(est),
    )
    if rule.unwaivable and not rule.is_gate_rule:
        problems.append(f'{location}: @unwaivable only applies to release-gate rules (forbid on Action::"promote")')
    if rule.is_gate_rule and not rule.checks:
        problems.append(f"{location}: gate rule {rule_id} compares no resource attribute with a literal threshold")
    return (None if problems else rule), problems


def _actions(constraint: dict) -> tuple[str, ...] | None:
    """Action ids a policy's scope names; None when it names none (applies to every action)."""
    entities = constraint.get("entities") or ([constraint["entity"]] if "entity" in constraint else [])
    return tuple(entity["id"] for entity in entities) or None


def _check_unique(entries: list[tuple[Rule, dict]], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for rule, _ in entries:
        if rule.id in seen:
            problems.append(f"{rule.location}: @id {rule.id!r} is already used at {seen[rule.id]}")
        seen.setdefault(rule.id, rule.location)


def _policy_set(policies: dict[str, dict]) -> cedarpy.PolicySet:
    return cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": policies, "templates": {}, "templateLinks": []})
    )
