"""The audit console's pages at scale, each beside the same query run directly on the store, in the same run.

Builds the governed history of tests/lineage/world.py (two versions through the real graph, signed
approvals, deployments, decisions served by the scoring API, a signed rollback, the kill switch), pads the
decision log to --decisions rows and the ledger with --ledger-entries entries (both in bulk, by
bench/history.py), then times each console page through the scoring API's ASGI app (the mount under
/console; TestClient adds well under a millisecond) against the store calls the page rests on:

  inventory, model page    verified_production (+ the model's registrations)
  version lineage          version_lineage
  decision trace           trace_decision on a random decision of the padded log
  ledger pages             Ledger.entries with the same filters (head, deep page, by model, by action)
  ledger entry             Ledger.entry + inclusion_proof
  ledger verify            Ledger.verify: the page answers (it verifies beside the page and reloads itself
                           until the result is there), and the time until the result is shown
  model card               evidence_pack.verify of the sealed pack

Goal (issue 23): each page under 300 ms with 1,000,000 decisions and 100,000 ledger entries.
Run by hand (a few minutes and about 1 GB of temporary disk at the defaults):

    .venv/bin/python bench/console.py [--decisions 1000000] [--ledger-entries 100000] [--runs 15]
                                      [--database-url postgresql://...] [--dir DIR]
"""

from __future__ import annotations

import random
import re
import statistics
import sys
import time
from html import unescape
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from bench.history import arguments, history, pad_decisions, pad_ledger  # noqa: E402
from governance import events  # noqa: E402
from governance.console import links  # noqa: E402
from governance.decisions import DecisionLog  # noqa: E402
from governance.lineage.chain import version_lineage  # noqa: E402
from governance.lineage.trace import trace_decision  # noqa: E402
from governance.release import evidence_pack  # noqa: E402
from governance.release.approvals import latest_request  # noqa: E402
from governance.release.production import verified_production  # noqa: E402
from governance.serving.app import create_app  # noqa: E402
from tests.lineage.world import MODEL, V1  # noqa: E402

GOAL = 0.3
GRANTED = events.ApprovalGranted.action
OTHER = "other_model"  # bench/history.py pads the ledger with entries about this model


def median(runs: int, action) -> float:
    action()  # warm: connections opened, statements prepared
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def row(name: str, page: float, store: float, goal: bool = True) -> None:
    verdict = f"goal < {GOAL * 1000:.0f} ms {'met' if page < GOAL else 'MISSED'}" if goal else ""
    print(
        f"{name:<42} {page * 1000:>9,.1f} ms  vs store {store * 1000:>9,.1f} ms  {page / store:>6,.2f}x  {verdict}",
        flush=True,
    )


def measure(world, ids: list[str], runs: int) -> None:
    services, log = world.services, DecisionLog.for_settings(world.settings)
    client = TestClient(create_app(world.settings, world.life.config), raise_server_exceptions=True)
    size, rng = services.ledger.size(), random.Random(5)

    def page(url: str, status: int = 200):
        def get() -> None:
            response = client.get(url)
            assert response.status_code == status, (url, response.status_code, response.text[:300])

        return get

    def cases():
        yield "inventory", page("/console/"), lambda: verified_production(services, MODEL)
        yield (
            "model page",
            page(links.model_url(MODEL, "/console")),
            lambda: (verified_production(services, MODEL), services.ledger.events(events.ModelRegistered, model=MODEL)),
        )
        yield (
            "version lineage",
            page(links.version_url(MODEL, V1, "/console")),
            lambda: version_lineage(services, MODEL, V1, registry=False),
        )
        chosen = rng.choice(ids)
        yield (
            "decision trace",
            page(links.decision_url(chosen, "/console")),
            lambda: trace_decision(services, log, chosen),
        )
        yield "ledger, newest page", page("/console/ledger"), lambda: services.ledger.entries(limit=51, checked=False)
        middle = size // 2
        yield (
            "ledger, deep page",
            page(links.ledger_url("/console", before=middle)),
            lambda: services.ledger.entries(before_seq=middle, limit=51, checked=False),
        )
        yield (
            f"ledger, by model ({OTHER}), deep",
            page(links.ledger_url("/console", model=OTHER, before=middle)),
            lambda: services.ledger.entries(model=OTHER, before_seq=middle, limit=51, checked=False),
        )
        yield (
            f"ledger, by type ({GRANTED})",
            page(links.ledger_url("/console", action=GRANTED)),
            lambda: services.ledger.entries(action=GRANTED, limit=51, checked=False),
        )
        seq = rng.randint(1, size)
        yield (
            "ledger entry with proof",
            page(links.ledger_entry_url(seq, "/console")),
            lambda: (services.ledger.entry(seq), services.ledger.inclusion_proof(seq)),
        )
        request = latest_request(services, MODEL, V1)
        yield (
            "model card (sealed pack)",
            page(links.evidence_file_url(MODEL, V1, "model_card.html", "/console")),
            lambda: evidence_pack.verify(Path(request.pack_path), request.pack_digest),
        )

    for name, console_page, store in cases():
        row(name, median(runs, console_page), median(runs, store))
    answered, shown = verify_page(client, runs)
    store = median(runs, services.ledger.verify)
    row("ledger verify: the page answers", answered, store)
    row("ledger verify: until its result is shown", shown, store, goal=False)


def verify_page(client: TestClient, runs: int) -> tuple[float, float]:
    """Medians of how long the verify page takes to answer, and until the page it reloads shows the result (polled
    every 10 ms instead of the browser's second)."""
    answers, results = [], []
    for _ in range(runs + 1):  # the first warms
        started = time.perf_counter()
        response = client.get("/console/ledger/verify")
        answers.append(time.perf_counter() - started)
        result = re.search(r'url=([^"]+)"', response.text)
        while response.status_code == 202 and result:
            time.sleep(0.01)
            response = client.get(unescape(result.group(1)))
        assert response.status_code == 200, response.text[:300]
        results.append(time.perf_counter() - started)
    return statistics.median(answers[1:]), statistics.median(results[1:])


def main() -> None:
    args = arguments(__doc__, runs=15)
    with history(args) as (world, _):
        started = time.perf_counter()
        ids = pad_decisions(world, args.decisions)
        pad_ledger(world, args.ledger_entries)
        count, size = DecisionLog.for_settings(world.settings).count(), world.services.ledger.size()
        print(
            f"padded to {count:,} decisions and {size:,} ledger entries in {time.perf_counter() - started:.0f} s "
            f"({'PostgreSQL' if args.database_url else 'SQLite'}); medians of {args.runs} runs",
            flush=True,
        )
        measure(world, ids, args.runs)


if __name__ == "__main__":
    main()
