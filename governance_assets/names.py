"""The names Dagster knows a governed model's assets, version partitions and candidate job by, kept free of Dagster:
`govern status` reads Dagster's storage by them (`programs.dagster_records`) without importing it."""

from __future__ import annotations


def asset_path(model: str, name: str) -> tuple[str, str]:
    """An asset key's path: prefixed with the model name (`credit_scoring/trained_model`)."""
    return (model, name)


def versions_name(model: str) -> str:
    """The dynamic partitions definition of the model's versions (one partition per version, `<model>-v<N>`)."""
    return f"{model}_versions"


def candidate_job_name(model: str) -> str:
    return f"{model}_candidate"
