"""The production configuration's Dagster storage: dagster-postgres, on the psycopg2 driver it needs.

Configured in the state dir's dagster.yaml as `storage: custom:` with this module and class, so every
process that reads the instance (webserver, daemon, run workers) builds its storages here, from the same
environment variable, whatever driver the URL in it names (`governance.settings.dagster_postgres_url`).
"""

from __future__ import annotations

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from governance.settings import dagster_postgres_url


class PostgresStorage(DagsterPostgresStorage):
    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> PostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=dagster_postgres_url(config_value["postgres_url"]),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
        )
