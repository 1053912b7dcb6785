"""Where things are inside an evidence pack (see README.txt in a pack, and policies/control_map.yaml)."""

PACK_KIND = "governance-assets/evidence-pack/v1"
MANIFEST, SIGNATURE, SUMS = "MANIFEST.json", "MANIFEST.sig", "SHA256SUMS"
PUBLIC_KEY, ROSTER = "keys/system.pub.pem", "roster.json"
APPROVED, POLICY, STATEMENTS, MONITORING = "approved_evidence", "policy/bundle", "statements", "monitoring"
ENTRIES, CHECKPOINT = "ledger/entries.json", "ledger/checkpoint.json"


def folder_name(version: str) -> str:
    """The one folder an evidence pack's archive holds."""
    return f"evidence-{version}"
