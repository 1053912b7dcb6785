"""Prometheus metrics of the scoring API.

With several uvicorn workers, `govern serve` points prometheus-client's own
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before the workers start, and
/metrics aggregates every worker's samples from it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("govern_serving_requests_total", "Decision requests answered, by HTTP status", ["model", "status"])
LATENCY = Histogram(
    "govern_serving_request_seconds",
    "Time from a valid request to its logged answer",
    ["model"],
    buckets=(0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DECISIONS = Counter("govern_serving_decisions_total", "Decisions logged, by outcome", ["model", "outcome"])
SAFE_STATE = Counter(
    "govern_serving_safe_state_total", "Decisions answered in the safe state (refer), by cause", ["model", "cause"]
)
ERRORS = Counter(
    "govern_serving_errors_total", "Errors, by kind (invalid_request, log_write, scoring, ...)", ["model", "kind"]
)
BATCH_SIZE = Histogram(
    "govern_serving_batch_size", "Applications decided together", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64)
)
SERVED_VERSION = Gauge(
    "govern_serving_served_version",
    "Version whose decisions are answered (0: the safe state: kill switch on or nothing servable)",
    ["model"],
    multiprocess_mode="mostrecent",
)
KILL_SWITCH = Gauge(
    "govern_serving_kill_switch",
    "Kill switch as last read (1: on, or unreadable; 0: off)",
    ["model"],
    multiprocess_mode="mostrecent",
)


def exposition() -> tuple[bytes, str]:
    """The metrics page: this process's registry, or every worker's when running multi-process."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return generate_latest(registry), CONTENT_TYPE_LATEST
