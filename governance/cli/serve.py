"""`govern serve`: run the scoring API (FastAPI on uvicorn) for every governed model."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from typing import Annotated

import typer

from governance.config import load_config
from governance.settings import Settings

APP_FACTORY = "governance.serving.app:app_from_env"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes (each decides and logs on its own)")] = 1,
) -> None:
    """Serve decisions from each governed model's approved champion, following promotions, rollbacks and
    the kill switch without a restart. Every decision is in the decision log before it is answered."""
    import uvicorn

    settings: Settings = ctx.obj
    load_config(settings.config_path)  # a bad config fails here, naming file, model and field
    # Worker processes build their Settings from the environment: hand them this command's choices.
    os.environ["GOVERN_HOME"], os.environ["GOVERN_CONFIG"] = str(settings.home), str(settings.config_path)
    metrics_dir = tempfile.mkdtemp(prefix="govern-metrics-") if workers > 1 else None
    if metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # prometheus-client's multi-process mode
    typer.echo(
        f"serving {settings.config_path} on http://{host}:{port} with {workers} worker(s); state in {settings.home}"
    )
    try:
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=_log_config(uvicorn.config.LOGGING_CONFIG),
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _log_config(base: dict) -> dict:
    """uvicorn's logging, plus the governance loggers (champion changes, safe state, failures)."""
    config = copy.deepcopy(base)
    config["loggers"]["governance"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def guard(
    ctx: typer.Context,
    poll_seconds: Annotated[
        float, typer.Option(min=0.01, max=10.0, help="how often the decision log is read for new decisions")
    ] = 0.1,
) -> None:
    """Run the fairness guard beside the scoring API: every governed model's decisions judged as they are logged,
    and harm contained (the kill switch, signed by the system principal) as soon as the evidence is conclusive
    at the monitoring policy's confidence. Reads the system key from GOVERN_SYSTEM_KEY or the state dir."""
    import logging
    import signal
    import threading

    from governance.monitoring.guard_watch import GuardWatch

    settings: Settings = ctx.obj
    load_config(settings.config_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    watch, stop = GuardWatch(settings), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"guarding {', '.join(watch.watched)} (state in {settings.home}); every {poll_seconds} s")
    try:
        watch.run(stop, poll_seconds)
    except KeyboardInterrupt:
        pass
