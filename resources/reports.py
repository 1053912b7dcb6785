"""The code location's IO manager (`io_manager`, Dagster's default key): every output an asset hands another
is a JSON document, and none is ever pickled.

An asset returns the document (the data snapshot's record, its validation, the trained model's record, the
reports, the model card's record, the release gate's decision, the approval request); `ReportIOManager` writes it
as canonical JSON (RFC 8785, the bytes every digest in the project is taken over) to the file the asset names
(`stored_as`): `<reports>/<model>/<version>/<file>` for a version partition, `<reports>/<model>/<file>` for the
unpartitioned data assets; the files the evidence pack seals and lineage reads. The materialization records the
file and its SHA-256 (metadata `file`, `sha256`). A downstream step reads the file back only if it still hashes
to the digest the latest materialization of that asset (partition) recorded; otherwise `StoredDocumentChanged`
names the asset, the partition, the file and both digests. An output it cannot store that way (no `stored_as`,
no asset, not JSON) fails its step: nothing falls back to Dagster's pickling IO manager.

Why: the state dir is writable by insiders who hold no key, and a run launched from the UI runs in a worker that
holds the system key. A pickle there runs whatever code its writer chose when a step loads it; JSON is only
parsed. A rewritten file is refused because its digest no longer matches the one recorded in Dagster's event log
when the asset wrote it. The file is a cache of what the asset produced, never an authority: anyone with the
state dir can edit it, and nothing downstream judges, cards or seals what the asset did not produce (the assets
ledger the same digests, the model is loaded from MLflow by its artifact digest, a snapshot is re-read against
its md5: the ledger is the record).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from governance.digests import canonical_json, sha256_hex
from governance.errors import GovernanceError
from governance.settings import Settings
from resources.state import GovernanceResource

STORED_AS = "governance/stored_as"  # definition metadata of an asset stored here: its file name in the version's dir
FILE, SHA256 = "file", "sha256"  # the materialization metadata that records what was written


class StoredDocumentChanged(GovernanceError):
    """A stored document no longer hashes to the digest its materialization recorded (or none was recorded)."""


def stored_as(file: str) -> dict[str, Any]:
    """The `@dg.asset` arguments of an asset whose output this IO manager stores as `file`."""
    return {"metadata": {STORED_AS: file}}


def stored_path(settings: Settings, model: str, version: str | None, file: str) -> Path:
    """Where a version's document `file` is stored (the evidence pack seals it from there), or an unpartitioned
    asset's when `version` is None."""
    return settings.model_dir(model, version) / file


class ReportIOManager(dg.ConfigurableIOManager):
    """Stores what assets hand each other as canonical JSON under the state dir, and reads one back only if it
    still hashes to the SHA-256 its materialization recorded. Never pickles."""

    governance: GovernanceResource

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not context.has_asset_key:
            raise GovernanceError(
                f"output {context.name} of {context.step_key}: the code location stores only assets' JSON documents "
                "(never a pickle); an op's output must be None"
            )
        path = self._path(context.asset_key, _partition(context), context.definition_metadata)
        data = canonical_json(obj)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.write_bytes(data)
        partial.replace(path)  # a reader sees the old file or the new one, never half of one
        context.add_output_metadata({FILE: dg.MetadataValue.path(str(path)), SHA256: sha256_hex(data)})

    def load_input(self, context: dg.InputContext) -> Any:
        upstream = context.upstream_output
        if upstream is None:
            raise GovernanceError(
                f"input {context.name}: the code location's IO manager loads only what an asset stored"
            )
        asset, partition = context.asset_key, _partition(context)
        path = self._path(asset, partition, upstream.definition_metadata)
        named = f"{asset.to_user_string()} partition {partition}" if partition else asset.to_user_string()
        recorded = _recorded_sha256(context.instance, asset, partition)
        if recorded is None:
            raise StoredDocumentChanged(
                f"{named}: no materialization recorded the SHA-256 of {path}, so nothing says what the file "
                f"should hold (a materialization reported by hand records none); materialize {asset.to_user_string()}"
            )
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoredDocumentChanged(
                f"{named}: {path} is missing (its materialization recorded SHA-256 {recorded}); "
                f"materialize {asset.to_user_string()} again"
            ) from None
        found = sha256_hex(data)
        if found != recorded:
            raise StoredDocumentChanged(
                f"{named}: {path} has SHA-256 {found}, but its materialization recorded {recorded}: the file changed "
                "after it was written. A stored file is a cache of what the asset produced, never an authority; "
                f"materialize {asset.to_user_string()} again"
            )
        return json.loads(data)

    def _path(self, asset: dg.AssetKey, partition: str | None, definition_metadata: Any) -> Path:
        file = _value((definition_metadata or {}).get(STORED_AS))
        if not file or len(asset.path) != 2:
            raise GovernanceError(
                f"{asset.to_user_string()}: the code location stores a model's outputs only as JSON documents (never "
                f"a pickle); the asset needs a `<model>/<name>` key and `{STORED_AS}` in its metadata (`stored_as`), "
                "or to return a MaterializeResult"
            )
        return stored_path(self.governance.settings, asset.path[0], partition, str(file))


def _partition(context: dg.InputContext | dg.OutputContext) -> str | None:
    """The asset's own partition: None for an unpartitioned asset, even in a run of a version partition."""
    return context.asset_partition_key if context.has_asset_partitions else None


def _recorded_sha256(instance: dg.DagsterInstance, asset: dg.AssetKey, partition: str | None) -> str | None:
    """The SHA-256 the latest materialization of this asset (partition) recorded, if any."""
    partitions = [partition] if partition else None
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=partitions), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    digest = materialization.metadata.get(SHA256) if materialization else None
    return str(_value(digest)) if digest is not None else None


def _value(item: Any) -> Any:
    return item.value if isinstance(item, dg.MetadataValue) else item
