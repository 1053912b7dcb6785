"""From a passing gate to production and back: evidence packs, approvals, deployment, rollback, kill switch."""
