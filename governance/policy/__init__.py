"""Policy as code in Cedar: the release gate, authorisation of governance actions, and waivers.

- bundle:     PolicyBundle.load(policies_dir): schema + *.cedar files, validated, with a digest
- evidence:   GateEvidence, what the release gate reads about a version
- gate:       evaluate_gate(bundle, evidence, waivers, now) -> GateDecision
- authz:      authorize(bundle, roles, principal, action, subject, context) -> AuthzDecision
- waivers:    grant_waiver / honoured_waivers (signed statements, ledger)
- records:    gate decisions in the ledger (record_gate_decision, require_gate_decision)
- thresholds, source: reading thresholds and file lines out of Cedar
"""
