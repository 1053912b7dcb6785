"""`verified_production` (what serving's follower runs at every poll) on a short and a long history, with the
working tree's code and a baseline revision's, in the same run.

    .venv/bin/python bench/production.py [--versions 300] [--moves 300] [--flips 300] [--repeats 200]
                                         [--baseline 866e5e2]

One state dir (embedded default, SQLite), built with the real pieces and no Dagster (tests/helpers): v1 and v2
registered, each sealed, approved by ravi and deployed; paul's signed rollback to v1; bea's kill switch on and
off. That is the short history. The long one adds, to the same state dir: --versions versions' signed requests and
approvals (dana's and ravi's statements, recorded by the store and ledgered), --moves signed rollbacks by paul
between v1 and v2 (ending on v1), after --flips signed kill-switch flips by bea (ending off): the latest flip is
older than every version and move, as in a model whose kill switch was last used long ago.

Per history and per code (the working tree; the baseline exported with `git archive`), a fresh process opens
`Services` once, as the follower does, calls `verified_production` 5 times to warm up, then times --repeats calls:
median and p90 in ms, and the champion, kill switch and number of incidents it found (both codes must agree).
Ratios: long/short (how the check grows with history) and now/baseline.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from governance.release.approvals import STATEMENT_VALIDITY as APPROVAL_VALIDITY  # noqa: E402
from governance.release.deployment import ROLLBACK_STATEMENT_VALIDITY, deploy, rollback  # noqa: E402
from governance.release.kill_switch import set_kill_switch  # noqa: E402
from governance.release.requests import request_candidate  # noqa: E402
from governance.release.services import Services  # noqa: E402
from governance.settings import Settings, apply_offline_env  # noqa: E402
from governance.trust.demo import demo_principals  # noqa: E402
from governance.trust.keys import load_private_key  # noqa: E402
from governance.trust.statements import Statement, sign  # noqa: E402
from tests.attacks.support import replayed_rollback  # noqa: E402
from tests.helpers import register_version, sealed_approval  # noqa: E402

MODEL = "credit_scoring"
BASELINE = "866e5e2"  # main before the trust reads of serving's poll were made incremental
MEASURE = """
import json, statistics, sys, time
from pathlib import Path
from governance.release.production import verified_production
from governance.release.services import Services
from governance.settings import Settings
home, config, policies, repeats = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
services = Services(Settings(home=home, config_path=config, policies_override=policies))
for _ in range(5):
    production = verified_production(services, "credit_scoring")
took = []
for _ in range(repeats):
    started = time.perf_counter()
    production = verified_production(services, "credit_scoring")
    took.append((time.perf_counter() - started) * 1000)
took.sort()
print(json.dumps({"median_ms": statistics.median(took), "p90_ms": took[int(0.9 * len(took))],
                  "champion": production.champion, "kill_switch": production.kill_switch,
                  "incidents": len(production.incidents)}))
"""


def short_history(settings: Settings) -> None:
    demo_principals(settings)
    services = Services(settings)
    for version in (1, 2):
        register_version(settings, seed=version)
        deploy(services, *sealed_approval(settings, version), actor="system:production_deployment")
    rollback(services, MODEL, "paul", _key(settings, "paul"), "v2 under investigation")
    set_kill_switch(services, MODEL, True, "bea", _key(settings, "bea"), "complaints spike")
    set_kill_switch(services, MODEL, False, "bea", _key(settings, "bea"), "complaints explained")


def long_history(settings: Settings, versions: int, moves: int, flips: int) -> None:
    """What hundreds of versions, moves and flips leave in the ledger and the stores, through the real code."""
    services = Services(settings)
    for i in range(flips):  # first: the reads since the latest flip then span the versions and moves after it
        set_kill_switch(services, MODEL, i % 2 == 0, "bea", _key(settings, "bea"), f"bench flip {i}")
    for number in range(3, 3 + versions):
        key = f"{MODEL}-v{number}"
        request_candidate(services, MODEL, key, "dana", _key(settings, "dana"))
        subject = {"model": MODEL, "version": key, "evidence_digest": "0" * 64}
        approval = Statement.new("approve", subject, "ravi", valid_for=APPROVAL_VALIDITY)
        services.statements.submit(sign(approval, _key(settings, "ravi")), services.roster)
    for i in range(moves):
        target = 2 if i % 2 == 0 else 1  # ends on v1 for an even count
        signed = sign(
            Statement.new(
                "rollback",
                {"model": MODEL, "version": f"{MODEL}-v{target}"},
                "paul",
                valid_for=ROLLBACK_STATEMENT_VALIDITY,
            ),
            _key(settings, "paul"),
        )
        services.statements.submit(signed, services.roster)
        # what `rollback` records once it has checked the move: the bench needs the record, not the checks
        replayed_rollback(services, target, signed.digest, f"bench move {i}")


def _key(settings: Settings, principal: str):
    return load_private_key(settings.keys_dir / f"{principal}.key")


def baseline_tree(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(code: Path, settings: Settings, repeats: int) -> dict:
    args = [str(settings.home), str(settings.config_path), str(REPO / "policies"), str(repeats)]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"measuring with {code} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=300)
    parser.add_argument("--moves", type=int, default=300)
    parser.add_argument("--flips", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args()
    apply_offline_env()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            home=root / "govern", config_path=REPO / "governance.yaml", policies_override=REPO / "policies"
        )
        codes = {"now": REPO, "baseline": baseline_tree(args.baseline, root / "baseline")}
        short_history(settings)
        found = {"short": {name: measure(code, settings, args.repeats) for name, code in codes.items()}}
        long_history(settings, args.versions, args.moves, args.flips)
        entries = Services(settings).ledger.size()
        found["long"] = {name: measure(code, settings, args.repeats) for name, code in codes.items()}
    print(f"long history: +{args.versions} versions, +{args.moves} moves, +{args.flips} flips ({entries} entries)")
    print(f"{'history':<8}{'code':<10}{'median ms':>10}{'p90 ms':>9}  champion  kill switch  incidents")
    for history, by_code in found.items():
        for name, r in by_code.items():
            print(
                f"{history:<8}{name:<10}{r['median_ms']:>10.2f}{r['p90_ms']:>9.2f}  v{r['champion']!s:<8} "
                f"{'on' if r['kill_switch'] else 'off':<12} {r['incidents']}"
            )
    for name in codes:
        growth = found["long"][name]["median_ms"] / found["short"][name]["median_ms"]
        print(f"{name}: long / short = {growth:.2f}")
    for history in found:
        ratio = found[history]["now"]["median_ms"] / found[history]["baseline"]["median_ms"]
        print(f"{history}: now / baseline = {ratio:.2f}")


if __name__ == "__main__":
    main()
