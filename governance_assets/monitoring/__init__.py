"""Production monitoring in Dagster: the monitoring report and remediation assets, the daemon helper, the scenario."""
