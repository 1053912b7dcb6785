"""Scoring API: `govern serve` side by side with `mlflow models serve` on the same model version.

    .venv/bin/python bench/serving.py [--seconds 15] [--clients 32] [--workers 1] [--flips 20]
                                      [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Trains the default credit_scoring model (governance.yaml: 50,000 generated rows),
registers it as v1 and deploys it through governance (a demo principal's signed
approval of its sealed evidence pack), all in a temporary state dir. Then, under the same closed-loop load (`--clients`
keep-alive connections, each sending one-row JSON requests back to back, the same
64 applications in turn), measures:

- `govern serve`: validation, score, SHAP reasons, decision log commit before every answer;
- baseline `mlflow models serve -m models:/credit_scoring/1 --env-manager local`
  with as many workers as `govern serve`: a bare `predict`, nothing logged, no reasons.

With --postgres ADMIN_URL the governance stores (ledger, signed statements, control state, decision log) are on a
new database of that server (dropped at the end), as in production: `govern serve` then requires an API token, which
the load client sends. MLflow stays in the state dir (serving reads it only when it loads a version).

It prints throughput, p50/p99 latency and server CPU per request (all worker
processes; the steadiest figure when other work shares the machine) of both and
the ratios, checks that the decision log holds one row per answer, and measures
the time from the start of a signed kill switch flip (what `govern disable` does:
sign, Cedar, row, ledger) to the first "refer" answer, and from a signed
`govern enable` to the first scored one (once serving's follower reads it, up to
its 1 s poll), over `--flips` flips under load. Goals (issue 5): at least mlflow's
throughput, p99 under 50 ms, kill switch honoured within 1 s at p99.
The load client is a lean asyncio HTTP/1.1 client in this process (uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.status import postgres_databases  # noqa: E402  (new databases on the server, dropped on exit)
from governance import migrations  # noqa: E402
from governance.config import GovernedModel, load_config  # noqa: E402
from governance.data.source import generate  # noqa: E402
from governance.decisions import DecisionLog  # noqa: E402
from governance.lineage.decision_seals import seal_decisions  # noqa: E402
from governance.processes import stop_process_groups  # noqa: E402
from governance.registry import version_key  # noqa: E402
from governance.release.kill_switch import set_kill_switch  # noqa: E402
from governance.release.services import Services  # noqa: E402
from governance.serving.tokens import TokenStore  # noqa: E402
from governance.settings import Settings, apply_offline_env  # noqa: E402
from governance.timestamps import utc_timestamp  # noqa: E402
from governance.trust.demo import demo_key_path, demo_principals  # noqa: E402
from governance.trust.keys import load_private_key  # noqa: E402
from tests.monitoring.support import deploy_version  # noqa: E402

MODEL = "credit_scoring"
GOAL_P99_MS = 50.0
GOAL_KILL_SWITCH_P99_S = 1.0
# Seconds after a flip before the next: an `enable` is honoured once the follower (polling every second) reads
# the signed record, which holds the switch on until then; a `disable` at the next batch.
SETTLE_S = {True: 0.4, False: 1.6}
GOVERN = Path(sys.executable).parent / "govern"


# --- state: one governed, deployed champion ------------------------------------------------


def deploy_champion(settings: Settings, model: GovernedModel) -> int:
    """Train on the configured generator data, register v1 and deploy it on ravi's signed approval of an evidence
    pack sealing its real performance, fairness and explainability reports (so the fairness guard arms)."""
    demo_principals(settings)
    assert model.source.generator is not None  # governance.yaml's default model is generated
    return deploy_version(settings, model, seed=7, rows=model.source.generator.rows)


def applications(model: GovernedModel, count: int = 2000) -> list[dict]:
    """A healthy sample of applications, sent in turn. Enough of them that each group's approval rate is the
    population's: a few dozen repeated look biased to the fairness guard, which then asks Cedar on most polls."""
    rows = generate(model, rows=10_000, seed=99)[0].sample(count, random_state=1)
    columns = model.feature_columns + model.protected_columns
    return [
        {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items() if c in columns}
        for _, row in rows.iterrows()
    ]


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, command: list[str], env: dict, ready_path: str, port: int, log: Path) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=1):
                    return time.monotonic() - started
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s; see {self.log.name}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and all its worker processes."""
        parent = psutil.Process(self.process.pid)
        times = [p.cpu_times() for p in [parent, *parent.children(recursive=True)]]
        return sum(t.user + t.system for t in times)

    def stop(self) -> None:
        stop_process_groups([self.process])
        self.log.close()


def govern_server(settings: Settings, workers: int, log_dir: Path) -> Server:
    port = free_port()
    command = [
        str(GOVERN),
        "--home",
        str(settings.home),
        "--config",
        str(settings.config_path),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server("govern serve", command, dict(os.environ), "/healthz", port, log_dir / "govern-serve.log")


def mlflow_server(settings: Settings, version: int, workers: int, log_dir: Path) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{MODEL}/{version}",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server("mlflow models serve", command, env, "/ping", port, log_dir / "mlflow-serve.log")


# --- load ---------------------------------------------------------------------------------


@dataclass
class Load:
    seconds: float
    server_cpu_seconds: float = 0.0
    beside_cpu_seconds: float = 0.0  # a process beside the server (`govern guard`), over the same load
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    answers: list[tuple[float, bytes]] = field(default_factory=list)  # (received at, body) when kept

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_bytes(port: int, path: str, payload: dict, token: str | None = None) -> bytes:
    body = json.dumps(payload).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readline()
        await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", 0)))
    return int(lines[0].split()[1]), body


async def run_load(port: int, requests: list[bytes], clients: int, seconds: float, keep_answers: bool = False) -> Load:
    load = Load(seconds)
    deadline = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(requests[i % len(requests)])
            status, body = await read_response(reader)
            received = time.perf_counter()
            load.latencies.append(received - sent)
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if keep_answers:
                load.answers.append((received, body))
            i += clients
        writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return load


def measure(
    server: Server, requests: list[bytes], clients: int, seconds: float, log: DecisionLog, beside: Server | None = None
) -> tuple[Load, int]:
    """A warm-up, then the measured load; also how many decisions the log gained during it. The CPU of a process
    `beside` the server is counted over the measured load too (not the warm-up: its decisions are not counted)."""
    uvloop.run(run_load(server.port, requests, clients, min(3.0, seconds)))
    before, cpu = log.count(MODEL), server.cpu_seconds()
    beside_cpu = beside.cpu_seconds() if beside else 0.0
    load = uvloop.run(run_load(server.port, requests, clients, seconds))
    load.server_cpu_seconds = server.cpu_seconds() - cpu
    load.beside_cpu_seconds = beside.cpu_seconds() - beside_cpu if beside else 0.0
    return load, log.count(MODEL) - before


def measure_guarded(server: Server, requests: list[bytes], args, settings: Settings) -> tuple[Load, float]:
    """The same load with `govern guard` (the fairness guard, armed for the champion) watching; then the CPU
    seconds per decision of sealing them, as the guard does every minute (timed here: in the measured load's
    15 s no decision has settled for sealing)."""
    log = settings.home.parent / "govern-guard.log"
    command = [str(GOVERN), "--home", str(settings.home), "--config", str(settings.config_path), "guard"]
    guard = Server("govern guard", command, dict(os.environ), "", 0, log)
    try:
        while b"guarding" not in log.read_bytes():
            if guard.process.poll() is not None:
                raise RuntimeError(f"govern guard exited; see {log}")
            time.sleep(0.1)
        load, _ = measure(server, requests, args.clients, args.seconds, DecisionLog.for_settings(settings), guard)
    finally:
        guard.stop()
    return load, sealing_cpu_per_decision(settings)


def sealing_cpu_per_decision(settings: Settings) -> float:
    """CPU seconds per decision of sealing every decision logged so far (`seal_decisions`, this process)."""
    started = time.process_time()
    sealed = seal_decisions(Services(settings), DecisionLog.for_settings(settings), before=utc_timestamp())
    return (time.process_time() - started) / sum(s.count for s in sealed)


# --- kill switch ----------------------------------------------------------------------------


def kill_switch_latencies(
    settings: Settings, port: int, requests: list[bytes], flips: int, clients: int = 8
) -> tuple[list[float], list[float]]:
    """Seconds from the start of each signed flip (bea, the business owner) to the first answer that honours it
    (on: refer; off: scored)."""
    services, bea = Services(settings), load_private_key(demo_key_path(settings, "bea"))
    writes: list[tuple[float, bool]] = []

    def flip() -> None:
        time.sleep(0.5)
        for _ in range(flips):
            for disabled in (True, False):
                started = time.perf_counter()
                set_kill_switch(services, MODEL, disabled, "bea", bea, "bench flip")
                writes.append((started, disabled))
                time.sleep(SETTLE_S[disabled])

    flipper = threading.Thread(target=flip)
    flipper.start()
    load = uvloop.run(
        run_load(port, requests, clients, 1.0 + flips * (sum(SETTLE_S.values()) + 0.5) + 1.0, keep_answers=True)
    )
    flipper.join()
    answers = [(t, json.loads(body)["safe_state"]) for t, body in load.answers]
    on, off = [], []
    for written, disabled in writes:
        first = next((t for t, safe in answers if t >= written and safe == disabled), None)
        if first is None:
            raise RuntimeError(f"no answer honoured the signed kill switch flip started at {written:.3f}")
        (on if disabled else off).append(first - written)
    return on, off


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- main -----------------------------------------------------------------------------------


@dataclass
class Measured:
    load: Load
    ready_seconds: float
    logged: int  # decision log rows added during the measured load
    batch: float = 0.0  # govern serve: mean applications per batch
    kill_on: list[float] = field(default_factory=list)  # govern serve: kill switch on -> first refer (s)
    kill_off: list[float] = field(default_factory=list)
    guarded: Load | None = None  # the same load again with `govern guard` watching the decision log
    seal_cpu_per_decision: float = 0.0  # seconds: sealing decisions into the ledger, as the guard does every minute


def bench(
    server: Server, path: str, payloads: list[dict], args, settings: Settings, governed: bool, token: str | None = None
) -> Measured:
    """Load one server (and, for govern serve, flip its kill switch); always stop it."""
    try:
        ready = server.wait_ready()
        requests = [request_bytes(server.port, path, p, token) for p in payloads]
        load, logged = measure(server, requests, args.clients, args.seconds, DecisionLog.for_settings(settings))
        if not governed:
            return Measured(load, ready, logged)
        batch = mean_batch_size(server.port, token)
        guarded, sealing = measure_guarded(server, requests, args, settings)
        on, off = kill_switch_latencies(settings, server.port, requests, args.flips)
        return Measured(load, ready, logged, batch, on, off, guarded, sealing)
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured load per server")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--workers", type=int, default=1, help="govern serve worker processes")
    parser.add_argument("--flips", type=int, default=20, help="kill switch flips on and off")
    parser.add_argument("--keep", action="store_true", help="keep the temporary state dir and server logs")
    parser.add_argument("--postgres", metavar="ADMIN_URL", help="governance stores on a new PostgreSQL database")
    args = parser.parse_args()
    apply_offline_env()
    with postgres_databases(args.postgres, 1) as databases:
        return run(args, databases.get("governance"))


def run(args, database_url: str | None) -> int:
    root = Path(tempfile.mkdtemp(prefix="govern-bench-serving-"))
    settings = Settings(home=root / "govern", config_path=REPO / "governance.yaml")
    settings.home.mkdir(parents=True)
    token = None
    if database_url:
        settings = replace(settings, database_url=database_url, roster_override=settings.home / "roster.yaml")
        for schema in migrations.SCHEMAS:
            migrations.upgrade(settings.ledger_url, schema)  # as `govern db upgrade`
        os.environ.update(GOVERN_DATABASE_URL=database_url, GOVERN_ROSTER=str(settings.roster_override))  # servers
    model = load_config(settings.config_path).model(MODEL)
    started = time.perf_counter()
    version = deploy_champion(settings, model)
    print(
        f"trained, registered and deployed {version_key(MODEL, version)} in {time.perf_counter() - started:.1f} s "
        f"({model.source.generator.rows} rows, {model.estimator.kind})"
    )
    if database_url:
        token = TokenStore.for_settings(settings).create("bench", "cli:bench")
    sample = applications(model)
    features = [{c: a[c] for c in model.feature_columns} for a in sample]
    try:
        ours = bench(
            govern_server(settings, args.workers, root),
            f"/models/{MODEL}/decisions",
            sample,
            args,
            settings,
            governed=True,
            token=token,
        )
        # mlflow serve goes second: loading `models:/...` from a local artifact store writes a
        # `registered_model_meta` file into the stored artifact, which changes its digest.
        base = bench(
            mlflow_server(settings, version, args.workers, root),
            "/invocations",
            [{"dataframe_records": [f]} for f in features],
            args,
            settings,
            governed=False,
        )
    finally:
        if args.keep:
            print(f"state and server logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(args, ours, base)
    return 0


def mean_batch_size(port: int, token: str | None) -> float:
    """Applications decided per batch so far (from /metrics)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    values = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("govern_serving_batch_size_sum", "govern_serving_batch_size_count"))
    }
    return values["govern_serving_batch_size_sum"] / values["govern_serving_batch_size_count"]


def report(args, ours: Measured, base: Measured) -> None:
    print(
        f"\n{args.clients} clients, {args.seconds:.0f} s each, one-row JSON requests; "
        f"govern serve and mlflow models serve with {args.workers} worker(s) each; governance stores on "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}"
    )
    print(f"{'':28}{'govern serve':>16}{'mlflow serve':>16}{'ratio':>10}")
    a, b = ours.load, base.load
    cpu_a, cpu_b = (1000 * load.server_cpu_seconds / len(load.latencies) for load in (a, b))
    report_guard(ours, cpu_a)
    for label, x, y in (
        ("throughput (req/s)", a.throughput, b.throughput),
        ("p50 latency (ms)", a.percentile_ms(0.50), b.percentile_ms(0.50)),
        ("p99 latency (ms)", a.percentile_ms(0.99), b.percentile_ms(0.99)),
        ("server CPU per request (ms)", cpu_a, cpu_b),
    ):
        print(f"{label:28}{x:16.2f}{y:16.2f}{x / y:10.2f}")
    print(f"{'answers (HTTP status: n)':28}{_statuses(a):>16}{_statuses(b):>16}")
    print(f"{'ready after start (s)':28}{ours.ready_seconds:16.1f}{base.ready_seconds:16.1f}")
    answered = sum(a.statuses.values())
    print(f"govern serve decided {ours.batch:.1f} applications per batch on average (one model call, one commit)")
    print(
        f"decision log: {ours.logged} rows added for {answered} answers during the measured run "
        f"(each with score, reasons and input digest, committed before its answer)"
    )
    on, off = ours.kill_on, ours.kill_off
    print(
        f"signed kill switch on -> first 'refer': p50 {1000 * percentile(on, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(on, 0.99):.1f} ms, max {1000 * max(on):.1f} ms over {len(on)} flips (8 clients)"
    )
    print(
        f"signed kill switch off -> first scored: p50 {1000 * percentile(off, 0.5):.1f} ms, "
        f"p99 {1000 * percentile(off, 0.99):.1f} ms"
    )
    goals = {
        "throughput >= mlflow serve": a.throughput >= b.throughput,
        f"p99 < {GOAL_P99_MS:.0f} ms": a.percentile_ms(0.99) < GOAL_P99_MS,
        f"kill switch p99 < {GOAL_KILL_SWITCH_P99_S:.0f} s": percentile(on, 0.99) < GOAL_KILL_SWITCH_P99_S,
        "every answer logged": ours.logged == answered and set(a.statuses) == {200},
    }
    print("goals: " + ", ".join(f"{goal}: {'met' if ok else 'MISSED'}" for goal, ok in goals.items()))


def report_guard(ours: Measured, cpu_alone: float) -> None:
    """Serving CPU per decision with the guard watching against without it, same run; and the guard's own."""
    guarded = ours.guarded
    assert guarded is not None
    cpu_guarded = 1000 * guarded.server_cpu_seconds / len(guarded.latencies)
    watching = 1000 * guarded.beside_cpu_seconds / len(guarded.latencies)
    guard_own = watching + 1000 * ours.seal_cpu_per_decision
    print(
        f"fairness guard: server CPU per request {cpu_guarded:.2f} ms with it watching, {cpu_alone:.2f} ms without "
        f"(ratio {cpu_guarded / cpu_alone:.3f}); the guard process's own CPU {guard_own:.3f} ms per decision "
        f"({watching:.3f} watching, {1000 * ours.seal_cpu_per_decision:.3f} sealing), "
        f"{100 * guard_own / cpu_alone:.1f}% of serving's; throughput {guarded.throughput:.0f} req/s with it; "
        f"goal: at most 5% more serving CPU per decision"
    )


def _statuses(load: Load) -> str:
    return " ".join(f"{status}:{count}" for status, count in sorted(load.statuses.items()))


if __name__ == "__main__":
    sys.exit(main())
