"""The MLflow model registry as the governance process uses it.

One MLflow experiment per governed model; one MLflow run per model version
(Dagster partition); one registered model version per run, tagged with the data
md5, code version, partition key and the SHA-256 of its artifact directory.
Serving follows the `champion` alias. Everything goes through an explicit
`MlflowClient` (no process-global active run), so two versions trained in one
process can never share a run.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from filelock import FileLock
from sqlalchemy.exc import SQLAlchemyError

from governance.digests import tree_sha256
from governance.errors import GovernanceError
from governance.objectstore import repository

CHAMPION = "champion"
log = logging.getLogger(__name__)
# MLflow writes this into a stored artifact directory whenever a `models:/` URI is loaded (e.g. by
# `mlflow models serve`); it describes the registration, not the model, so it is not part of the digest.
NOT_MODEL_CONTENT = frozenset({"registered_model_meta"})
PARTITION_TAG = "governance.partition_key"
KEY_PATTERN = re.compile(r"^(?P<model>[a-z][a-z0-9_]*)-v(?P<version>[1-9][0-9]*)$")


class RegistryError(GovernanceError):
    """The registry is not in the state the governance process expects."""


class ArtifactChanged(RegistryError):
    """A version's stored artifact no longer has the digest its approval names: an incident, never loaded."""


def version_key(model: str, version: int) -> str:
    """The stable partition key of one registered version, e.g. `credit_scoring-v3`."""
    return f"{model}-v{version}"


def parse_version_key(key: str) -> tuple[str, int]:
    match = KEY_PATTERN.match(key)
    if not match:
        raise RegistryError(f"{key!r} is not a model version key (expected <model>-v<number>)")
    return match["model"], int(match["version"])


@dataclass(frozen=True)
class RegisteredVersion:
    model: str
    version: int
    run_id: str
    source: str
    artifact_sha256: str
    tags: dict[str, str]

    @property
    def key(self) -> str:
        return version_key(self.model, self.version)


class ModelRegistry:
    def __init__(self, tracking_uri: str, artifact_root: str, lock_dir: Path) -> None:
        """`artifact_root` is a URI (`file:` in the state dir, `s3:` in the object store). Every artifact
        location is derived from it, never read back from MLflow's database (which holds absolute URIs): a
        copied or restored state writes into its own root, never into the original's."""
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root.rstrip("/")
        self._lock_dir = Path(lock_dir)

    @cached_property
    def client(self):
        """MLflow's client, made on first use: importing MLflow and opening its store take about 4 s, which
        reading the champion alias does not need (`champion`)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @classmethod
    def for_settings(cls, settings) -> ModelRegistry:
        return cls(settings.tracking_uri, settings.artifact_root_uri, settings.home)

    @staticmethod
    def prepare(settings) -> None:
        """Create MLflow's database (when the tracking URI is one) with its `Default` experiment under the
        artifact root: MLflow's own client would put it under the current directory."""
        if not _is_database(settings.tracking_uri):
            return  # a tracking server: its own --default-artifact-root decides
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        quiet = logging.getLogger("mlflow.store.db.utils")  # its table creation notes would mix into --json output
        level = quiet.level
        quiet.setLevel(logging.WARNING)
        try:
            SqlAlchemyStore(settings.tracking_uri, settings.artifact_root_uri)
        finally:
            quiet.setLevel(level)

    def run_artifacts(self, model: str, run_id: str) -> str:
        """A run's artifact URI, in MLflow's own layout (experiment location / run id / artifacts)."""
        return f"{self.artifact_root}/{model}/{run_id}/artifacts"

    # --- runs ------------------------------------------------------------------
    def experiment_id(self, model: str) -> str:
        name = f"governance/{model}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root}/{model}"
        return self.client.create_experiment(name, artifact_location=location, tags={"governance.model": model})

    def run_for(self, model: str, key: str):
        """The MLflow run of one version key, or None (there is at most one)."""
        runs = self.client.search_runs([self.experiment_id(model)], filter_string=f"tags.`{PARTITION_TAG}` = '{key}'")
        if len(runs) > 1:
            raise RegistryError(f"{key}: {len(runs)} MLflow runs carry this partition key; expected one")
        return runs[0] if runs else None

    def start_run(self, model: str, key: str, tags: dict[str, str]) -> str:
        """Open the version's run: a new one, or the one a failed attempt left (never a second)."""
        existing = self.run_for(model, key)
        if existing is not None:
            self.client.update_run(existing.info.run_id, status="RUNNING")
            return existing.info.run_id
        run = self.client.create_run(self.experiment_id(model), run_name=key, tags={PARTITION_TAG: key, **tags})
        return run.info.run_id

    def log(self, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric, Param

        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        )

    def finish_run(self, run_id: str, ok: bool) -> None:
        self.client.set_terminated(run_id, status="FINISHED" if ok else "FAILED")

    # --- versions ------------------------------------------------------------------
    def latest_version(self, model: str) -> int:
        versions = self.client.search_model_versions(f"name = '{model}'")
        return max((int(v.version) for v in versions), default=0)

    def log_evaluation(self, run_id: str, metrics: dict[str, float]) -> None:
        """Record a version's evaluation figures (performance, fairness) on its run, for MLflow's own views;
        the reports whose digests the ledger holds stay the evidence."""
        self.log(run_id, {}, {name: value for name, value in metrics.items() if value is not None})

    def describe_version(self, model: str, version: int, description: str, tags: dict[str, str]) -> None:
        """Describe and tag a version after the fact, from a verified record (evidence pack, approval, run).
        These tags are caches for people browsing MLflow: nothing reads them back as authority."""
        self.client.update_model_version(model, str(version), description=description)
        for name, value in tags.items():
            self.client.set_model_version_tag(model, str(version), name, value)

    def register(
        self,
        model: str,
        key: str,
        run_id: str,
        pipeline,
        trusted_types: list[str],
        tags: dict[str, str],
        sample=None,
        description: str = "",
    ) -> RegisteredVersion:
        """Save the pipeline into the run and register it as exactly the version `key` names; `sample` (a few
        feature rows) gives the saved model its input and output signature."""
        import mlflow.sklearn
        from mlflow.models import infer_signature

        _, expected = parse_version_key(key)
        signature = None if sample is None else infer_signature(sample, pipeline.predict_proba(sample)[:, 1])
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "model"
            mlflow.sklearn.save_model(
                pipeline,
                str(local),
                skops_trusted_types=trusted_types,
                pip_requirements=_pip_requirements(),
                signature=signature,
            )
            digest = tree_sha256(local, NOT_MODEL_CONTENT)
            repository(self.run_artifacts(model, run_id)).log_artifacts(str(local), artifact_path="model")
        source = f"{self.run_artifacts(model, run_id)}/model"
        with FileLock(self._lock_dir / f".register-{model}.lock"):
            latest = self.latest_version(model)
            if latest != expected - 1:
                raise RegistryError(
                    f"{key}: the registry's latest version of {model!r} is v{latest}, so this "
                    f"partition would not get v{expected}; request a new candidate"
                )
            if self.client.search_registered_models(f"name = '{model}'") == []:
                self.client.create_registered_model(
                    model,
                    tags={"governance.model": model},
                    description=f"Governed model {model}: the champion alias moves only through a signed, "
                    "verified deployment or rollback (governance-assets); versions carry their evidence digests.",
                )
            created = self.client.create_model_version(
                model,
                source,
                run_id=run_id,
                tags={PARTITION_TAG: key, "governance.artifact_sha256": digest, **tags},
                description=description or None,
            )
        if int(created.version) != expected:
            raise RegistryError(f"{key}: MLflow assigned v{created.version} instead of v{expected}")
        return self.version(model, expected)

    def version(self, model: str, version: int) -> RegisteredVersion:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.get_model_version(model, str(version))
        except MlflowException:
            raise RegistryError(f"{version_key(model, version)}: no such registered model version") from None
        tags = dict(found.tags)
        return RegisteredVersion(
            model=model,
            version=version,
            run_id=found.run_id or "",
            source=found.source or "",
            artifact_sha256=tags.get("governance.artifact_sha256", ""),
            tags=tags,
        )

    def versions(self, model: str) -> list[RegisteredVersion]:
        found = self.client.search_model_versions(f"name = '{model}'")
        return sorted((self.version(model, int(v.version)) for v in found), key=lambda v: v.version)

    def artifact_digest(self, registered: RegisteredVersion) -> str:
        """Recompute the SHA-256 of the version's artifact directory as stored now."""
        with self._local_copy(registered) as path:
            return tree_sha256(path, NOT_MODEL_CONTENT)

    def load(self, registered: RegisteredVersion, expected_sha256: str):
        """Load a version's pipeline only if its stored artifacts still have the expected digest.

        The digest is checked on the very copy that is loaded (no window for a swap), and before
        skops deserialises anything.
        """
        import mlflow.sklearn

        with self._local_copy(registered) as path:
            actual = tree_sha256(path, NOT_MODEL_CONTENT)
            if actual != expected_sha256:
                raise ArtifactChanged(
                    f"{registered.key}: model artifact digest is {actual[:12]}..., expected "
                    f"{expected_sha256[:12]}...; refusing to load a changed artifact"
                )
            return mlflow.sklearn.load_model(str(path))

    @contextmanager
    def _local_copy(self, registered: RegisteredVersion) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="govern-model-") as tmp:
            artifacts = repository(self.run_artifacts(registered.model, registered.run_id))
            yield Path(artifacts.download_artifacts("model", dst_path=tmp))

    # --- aliases -------------------------------------------------------------------
    def champion(self, model: str) -> int | None:
        """The version the `champion` alias points at (a cache: `governance.release.production` says what may be
        served). On MLflow's own database it is read with one query, without importing MLflow; elsewhere, or
        should that table not read as expected, through MLflow's client."""
        if _is_database(self.tracking_uri):
            try:
                return _alias_in_database(self.tracking_uri, model, CHAMPION)
            except SQLAlchemyError as exc:
                log.warning("reading MLflow's alias table failed (%s); asking MLflow's client", type(exc).__name__)
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(model, CHAMPION).version)
        except MlflowException:
            return None

    def set_champion(self, model: str, version: int) -> None:
        self.client.set_registered_model_alias(model, CHAMPION, str(version))


def _is_database(tracking_uri: str) -> bool:
    return tracking_uri.partition(":")[0].split("+")[0] in ("sqlite", "postgresql", "mysql")


def _alias_in_database(tracking_uri: str, model: str, alias: str) -> int | None:
    """An alias as MLflow's registry stores it (`registered_model_aliases`, MLflow 2.3 and later);
    tests/test_registry.py holds this against MLflow's client, so an MLflow upgrade that moves it fails there."""
    from sqlalchemy import text

    with _registry_database(tracking_uri).connect() as conn:
        found = conn.execute(
            text("SELECT version FROM registered_model_aliases WHERE name = :model AND alias = :alias"),
            {"model": model, "alias": alias},
        ).scalar()
    return None if found is None else int(found)


@cache
def _registry_database(tracking_uri: str):
    """MLflow's database, opened as MLflow opens it (none of the settings the project's own stores make)."""
    from sqlalchemy import create_engine

    return create_engine(tracking_uri, pool_pre_ping=True)


def _pip_requirements() -> list[str]:
    """The exact versions this process scores with (MLflow would otherwise infer them in a subprocess: ~5 s)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")]
