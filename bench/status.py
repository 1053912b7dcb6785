"""`govern status --json` now against a baseline revision, measured in the same run, at 1 and 50 governed models.

    .venv/bin/python bench/status.py [--models 1 50] [--versions 0] [--repeats 7] [--baseline 1cccd89]
                                     [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Per model count, one state dir from config alone (bench/scale.py's models, small data); with --versions N, each
model also has N versions in Dagster: their partitions and one materialization of each of their assets, as a
candidate run leaves them (reported without running one; the ledger holds nothing of them). `govern status --json`
runs as a fresh process (imports included: what a dashboard waits for) from the baseline revision's code (exported
with `git archive`) and from the working tree, alternately (which goes first flips every repeat), on the same state
dir and the same Python environment. Both must print the same JSON. Figures are medians of the repeats, of wall
time and of the process's CPU time (user + system: what a run costs when other work on the cores stretches its wall
time); the ratio is now / baseline.

Stores: the state dir's SQLite files (the embedded default); with --postgres ADMIN_URL, the governance stores,
Dagster and MLflow each on a new PostgreSQL database (the production configuration), dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scale import config  # noqa: E402  (the same governed models as bench/scale.py)

ENTRY = "from programs.cli import main; main()"  # what the `govern` script runs
BASELINE = "1cccd89"  # the last revision whose `govern status` imported Dagster and asked its instance per asset
CARD = "x" * 8000  # a model card's text is in its materialization's metadata


def baseline_tree(revision: str, into: Path) -> Path:
    """The code at `revision`, exported (no checkout: the working tree stays as it is)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextmanager
def postgres_databases(admin_url: str | None, count: int) -> Iterator[dict[str, str]]:
    """New databases for the governance stores, Dagster and MLflow (none without an admin URL), dropped on exit."""
    if admin_url is None:
        yield {}
        return
    import sqlalchemy

    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {
        store: f"bench_status_{count}_{uuid.uuid4().hex[:8]}_{store}" for store in ("governance", "dagster", "mlflow")
    }
    with admin.connect() as conn:
        for name in names.values():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield {store: admin_url.rsplit("/", 1)[0] + f"/{name}" for store, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def state(root: Path, count: int, versions: int, databases: dict[str, str]) -> dict[str, str]:
    """A state dir of `count` governed models (on `databases` if any); the environment `govern` runs in there."""
    from governance import migrations
    from governance.settings import Settings
    from governance.trust.demo import demo_principals
    from programs.instance import create_databases, open_instance

    root.mkdir(parents=True)
    settings = Settings(home=root / "govern", config_path=config(root / "governance.yaml", count),
                        policies_override=REPO / "policies")  # fmt: skip
    env = {"GOVERN_POLICIES": str(REPO / "policies"), "PATH": str(Path(sys.executable).parent)}
    if databases:
        settings = replace(settings, database_url=databases["governance"], dagster_database_url=databases["dagster"],
                           mlflow_tracking_uri=databases["mlflow"], roster_override=settings.home / "roster.yaml")  # fmt: skip
        env.update(GOVERN_DATABASE_URL=databases["governance"], GOVERN_DAGSTER_DATABASE_URL=databases["dagster"],
                   MLFLOW_TRACKING_URI=databases["mlflow"], GOVERN_ROSTER=str(settings.roster_override))  # fmt: skip
        os.environ["GOVERN_DAGSTER_DATABASE_URL"] = databases["dagster"]  # the dagster.yaml names the variable
        for schema in migrations.SCHEMAS:
            migrations.upgrade(settings.ledger_url, schema)  # as `govern db upgrade`
    demo_principals(settings)
    create_databases(settings)
    if versions:
        with open_instance(settings) as instance:
            record_versions(instance, [f"model_{i:02d}" for i in range(count)], versions)
    return {"--home": str(settings.home), "--config": str(settings.config_path), **env}


def record_versions(instance, models: list[str], versions: int) -> None:
    """Each model's version partitions and a materialization of each of its assets, as a candidate run leaves them."""
    import dagster as dg

    from programs.status import DATA_ASSETS, VERSION_ASSETS

    facts = {"dvc_md5": "d41d8cd98f00b204e9800998ecf8427e", "passed": True, "complete": True, "allowed": True}
    for model in models:
        keys = [f"{model}-v{n}" for n in range(1, versions + 1)]
        instance.add_dynamic_partitions(f"{model}_versions", keys)
        assets = [(name, None) for name in DATA_ASSETS] + [(name, key) for key in keys for name in VERSION_ASSETS]
        for name, key in assets:
            metadata = {**facts, "card": dg.MetadataValue.md(CARD)} if name == "model_card" else facts
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=[model, name], partition=key, metadata=metadata)
            )


def status(tree: Path, where: dict[str, str]) -> tuple[tuple[float, float], str]:
    """Wall time and CPU time (user and system), and output, of one `govern status --json` run with the code of
    `tree`. The CPU time shows what the run costs when other work shares the cores and stretches wall time."""
    options = ["--home", where["--home"], "--config", where["--config"], "status", "--json"]
    env = {k: v for k, v in where.items() if not k.startswith("--")} | {"PYTHONPATH": str(tree)}
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-c", ENTRY, *options], cwd=tree, env=env, check=True, capture_output=True)
    return (time.perf_counter() - started, _children_cpu() - cpu), done.stdout.decode()


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def compare(base: Path, now: Path, where: dict[str, str], repeats: int) -> dict[Path, tuple[float, float]]:
    """Median wall and CPU time of the baseline's and the working tree's status, runs alternating."""
    times: dict[Path, list[tuple[float, float]]] = {base: [], now: []}
    said = {tree: status(tree, where)[1] for tree in (base, now)}  # a first run each, not counted (warm caches)
    if json.loads(said[base]) != json.loads(said[now]):
        raise SystemExit("the baseline and the working tree print different statuses: nothing to compare")
    for repeat in range(repeats):
        for tree in (base, now) if repeat % 2 == 0 else (now, base):
            times[tree].append(status(tree, where)[0])
    return {
        tree: (statistics.median(wall for wall, _ in found), statistics.median(cpu for _, cpu in found))
        for tree, found in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--versions", type=int, default=0, help="versions in Dagster per model")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to measure against")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="run the stores on new PostgreSQL databases")
    args = parser.parse_args()
    from governance.settings import apply_offline_env

    apply_offline_env()
    revision = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.baseline], check=True,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
    stores = "PostgreSQL" if args.postgres else "SQLite (embedded default)"
    print(f"`govern status --json` as a fresh process; stores: {stores}; median of {args.repeats} alternating runs")
    print(f"baseline: {args.baseline} ({revision}); now: the working tree\n")
    print(f"{'':>15} {'wall time':^34} {'CPU time (user + system)':^34}")
    columns = f"{'baseline s':>10} {'now s':>7} {'now/baseline':>13}"
    print(f"{'models':>6} {'versions':>8} {columns} {columns}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        base = baseline_tree(args.baseline, Path(tmp) / "baseline")
        for count in args.models:
            databases = stack.enter_context(postgres_databases(args.postgres, count))
            where = state(Path(tmp) / f"m{count}", count, args.versions, databases)
            medians = compare(base, REPO, where, args.repeats)
            figures = " ".join(
                f"{before:>10.2f} {after:>7.2f} {after / before:>13.2f}"
                for before, after in zip(medians[base], medians[REPO])
            )
            print(f"{count:>6} {args.versions:>8} {figures}", flush=True)
    print("\ngoal at 50 models: `govern status --json` < 3 s")


if __name__ == "__main__":
    main()
