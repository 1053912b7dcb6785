"""Programs that drive Dagster but are not assets, above the code location they load (`definitions`).

The state dir's Dagster instance and its PostgreSQL storage (`instance`, `postgres_storage`, which the
dagster.yaml `governance.state` writes names; the embedded default's is `speedups.PooledSqliteStorage`), the headless demo and the monitoring scenario it plays,
`govern status` (`status`; `dagster_records` reads what it shows of Dagster's storage without importing Dagster),
the program behind `govern train`, the Dagster daemon of a state dir, the production topology on one machine,
and `govern` itself (`cli`: the core's commands with `demo`, `status` and `ui`).
"""
