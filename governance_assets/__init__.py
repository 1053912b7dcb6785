"""Dagster wiring: one asset graph per governed model, over the governance core."""
