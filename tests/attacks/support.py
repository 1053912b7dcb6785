"""What the attack suite's modules share: the insider's own tools (SQL outside the project's code), what serving
answers now, the incidents the ledger holds, and the copies of pending candidates to attack."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha256

import httpx
import sqlalchemy
from sqlalchemy.pool import NullPool

from governance import events
from governance.config import load_config
from governance.control import ControlStore
from governance.data.generator import generate_applications
from governance.decisions import DecisionLog
from governance.digests import canonical_json
from governance.ledger.merkle import leaf_hash, mth
from governance.ledger.records import GENESIS, record_bytes
from governance.release.deployment import _move
from governance.release.services import Services
from governance.serving.app import create_app
from governance.serving.champion import ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from governance.trust.demo import demo_key_path
from governance.trust.keys import load_private_key
from jobs import candidate_job_name, release_job_name
from tests.helpers import Lifecycle, RunningAPI
from tests.lineage.world import MODEL, database_env
from tests.serving.conftest import bearer

V3, V4 = f"{MODEL}-v3", f"{MODEL}-v4"
POLL_SECONDS = 0.1  # the scoring API's follower polls this often in the suite


def sql(settings, statement: str, url: str | None = None, **params) -> None:
    """What an insider with the governance database's (or `url`'s) credentials runs, outside the project's code."""
    engine = sqlalchemy.create_engine(url or settings.ledger_url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(statement), params)
    engine.dispose()


def drop_inserts(settings, action: str) -> None:
    """A trigger, added by a writer of the governance database, that silently drops new ledger entries of `action`."""
    if Services(settings).ledger.engine.dialect.name == "sqlite":
        sql(
            settings,
            "CREATE TRIGGER drop_action BEFORE INSERT ON ledger_entries "
            f"WHEN json_extract(NEW.content, '$.action') = '{action}' BEGIN SELECT RAISE(IGNORE); END",
        )
        return
    sql(
        settings,
        "CREATE FUNCTION drop_action() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.content::jsonb ->> "
        f"'action' = '{action}' THEN RETURN NULL; END IF; RETURN NEW; END $$",
    )
    sql(
        settings,
        "CREATE TRIGGER drop_action BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION drop_action()",
    )


def answers(settings, count: int = 20) -> list[dict]:
    """What serving answers now: the follower derives champion and kill switch, the maker decides."""
    services = Services(settings)
    model = services.governed_model(MODEL)
    follower = ChampionFollower(settings, model, services.registry, services.control)
    follower.refresh()
    follower.refresh()  # an incident is one seen at two polls in a row
    maker = DecisionMaker(model, follower, ControlStore.for_settings(settings), DecisionLog.for_settings(settings))
    rows = generate_applications(count, seed=5).to_dict("records")
    return maker.decide([Application({c: row[c] for c in model.feature_columns}, None) for row in rows])


@contextmanager
def scoring_api(settings) -> Iterator[httpx.Client]:
    """The real scoring API over the state (in a thread, as `govern serve` runs it), and a client for it (with an
    API token in production)."""
    headers = bearer(settings) if settings.production else {}
    with (
        RunningAPI(create_app(settings, load_config(settings.config_path), poll_seconds=POLL_SECONDS)) as api,
        httpx.Client(base_url=api.url, timeout=10, headers=headers) as client,
    ):
        yield client


def ask(client: httpx.Client, settings, count: int = 5) -> list[dict]:
    """`count` decisions asked of the running scoring API (generator applications)."""
    model = Services(settings).governed_model(MODEL)
    rows = generate_applications(count, seed=5)[model.feature_columns].to_dict("records")
    replies = [
        client.post(
            f"/models/{MODEL}/decisions", json={k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        )
        for r in rows
    ]
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    return [r.json() for r in replies]


def incidents(settings, *words: str) -> list[str]:
    """The descriptions of the model's ledgered production incidents that name every one of `words`."""
    found = Services(settings).ledger.events(events.ProductionIncident, model=MODEL)
    return [i.description for i in found if all(word in i.description for word in words)]


def key_of(settings, principal: str):
    """A demo principal's private key (the insider of a test holds only the ones it uses)."""
    return load_private_key(demo_key_path(settings, principal))


def replayed_rollback(services: Services, version: int, statement: str, reason: str, actor: str = "paul") -> None:
    """What `rollback` records once it has checked the move, run directly with `statement`: the move back to
    `version`, with the artifact, evidence pack and approval of its latest completed deployment."""
    original = services.ledger.latest(events.DeploymentCompleted, model=MODEL, version=f"{MODEL}-v{version}")
    assert original is not None, f"{MODEL}-v{version} was never deployed"
    _move(
        services,
        MODEL,
        version,
        kind="rollback",
        actor=actor,
        artifact_sha256=original.artifact,
        evidence_digest=original.evidence_pack,
        approval_digest=original.approval,
        statement=statement,
        reason=reason,
    )


@dataclass
class Pending:
    """A copy of the lineage world with two candidates awaiting approval: v3, requested by dana (signed, as `govern
    train` does), and v4, launched as from the UI with a run tag naming paul (nobody verifiably requested it)."""

    life: Lifecycle

    @property
    def settings(self):
        return self.life.settings

    @property
    def services(self) -> Services:
        return Services(self.life.settings)

    def candidate(self, version: str, tags: dict[str, str] | None = None, seed: int = 13):
        """Run the candidate job for `version` again (a new evidence pack and approval request)."""
        job = self.life.defs.resolve_job_def(candidate_job_name(MODEL))
        with database_env(self.settings):
            return job.execute_in_process(
                instance=self.life.instance,
                partition_key=version,
                tags=tags or {},
                run_config={"ops": {f"{MODEL}__applications": {"config": {"seed": seed}}}},
                raise_on_error=False,
            )

    def release(self, version: str = V3, selection=None):
        """Run what the approval sensor launches: approved_release then production_deployment."""
        job = self.life.defs.resolve_job_def(release_job_name(MODEL))
        with database_env(self.settings):
            return job.execute_in_process(
                instance=self.life.instance, partition_key=version, raise_on_error=False, asset_selection=selection
            )

    def release_refusal(self) -> str:
        refused = self.services.ledger.latest(events.ReleaseRefused, model=MODEL)
        return " ".join(refused.reasons) if refused else ""


def rewrite_consistently(
    url: str, seq: int, field: str, value: str, *, spelled: Callable[[bytes], bytes] | None = None
) -> None:
    """An attacker with write access and the documented formula: change one entry, re-hash everything after it.
    `spelled` rewrites the changed entry's canonical bytes as stored (a key written twice, say)."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    with engine.begin() as db:
        rows = db.execute(sqlalchemy.text("SELECT seq, content, payload_digest FROM ledger_entries ORDER BY seq"))
        prev, leaves = GENESIS, []
        for current, content, payload_digest in rows.fetchall():
            entry = json.loads(content)
            if current == seq:
                entry[field] = value
            stored = canonical_json(entry)
            if current == seq and spelled:
                stored = spelled(stored)
            prev = sha256(record_bytes(stored, payload_digest, prev, current)).hexdigest()
            db.execute(
                sqlalchemy.text("UPDATE ledger_entries SET content = :content, entry_hash = :hash WHERE seq = :seq"),
                {"content": stored.decode(), "hash": prev, "seq": current},
            )
            leaves.append(leaf_hash(bytes.fromhex(prev)))
        db.execute(sqlalchemy.text("DELETE FROM ledger_nodes"))
        for level in range(8, len(leaves).bit_length()):
            span = 1 << level
            for idx in range(len(leaves) // span):
                db.execute(
                    sqlalchemy.text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (:level, :idx, :hash)"),
                    {"level": level, "idx": idx, "hash": mth(leaves[idx * span : (idx + 1) * span]).hex()},
                )
    engine.dispose()
