"""Lineage for auditors: a version's chain, a decision's trace, the evidence pack, the control map, retention.

Dagster-free. Modules:
- chain:       version_lineage(services, model, version, size=None) -> Lineage (each step with entry and proof)
- trace:       trace_decision(services, decision_log, decision_id) -> dict (decision, what was in force, lineage)
- pack:        export_evidence(services, model, version, out) -> ExportedPack (the signed zip)
- verify:      verify_pack(path, pinned_key=None, trusted_keys=None) -> PackVerification (offline, archive only)
- control_map: load_control_map(path) -> ControlMap (policies/control_map.yaml, edited by compliance)
- retention:   apply_retention(services, retention, models, now=None) -> RetentionRun
- proofs, layout, html: checking an entry offline; where things are in a pack; the pack's pages
"""
