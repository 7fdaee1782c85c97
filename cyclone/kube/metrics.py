"""Prometheus metrics of the Kubernetes machinery: work queues, controllers, API clients.

They live in prometheus-client's default registry, as client-go's do, so one scrape of a
process shows every part it runs (`cyclone up` runs them all). Labels are bounded: a
controller name, a cluster kind (``embedded`` or ``remote``), an HTTP verb and a code; never
an object name.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from cyclone.kube.errors import ApiError

QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

WORKQUEUE_DEPTH = Gauge(
    "cyclone_workqueue_depth", "Keys waiting in a controller's work queue.", ["controller"])
WORKQUEUE_ADDS = Counter(
    "cyclone_workqueue_adds_total", "Keys put in a controller's work queue.", ["controller"])
WORKQUEUE_RETRIES = Counter(
    "cyclone_workqueue_retries_total",
    "Keys put back with backoff after a failed reconcile.", ["controller"])
WORKQUEUE_QUEUE_DURATION = Histogram(
    "cyclone_workqueue_queue_duration_seconds",
    "How long a key waited in the work queue before a worker took it.", ["controller"],
    buckets=QUEUE_BUCKETS)
WORKQUEUE_WORK_DURATION = Histogram(
    "cyclone_workqueue_work_duration_seconds",
    "How long one reconcile of a key took.", ["controller"], buckets=QUEUE_BUCKETS)
RECONCILE_ERRORS = Counter(
    "cyclone_reconcile_errors_total",
    "Reconciles that raised (the key is retried with backoff).", ["controller"])
API_REQUESTS = Counter(
    "cyclone_kube_client_requests_total",
    "Requests of Cyclone's Kubernetes API clients, by cluster kind, HTTP verb and answer "
    "code (``error`` when no answer came).", ["cluster", "verb", "code"])

EMBEDDED = "embedded"
REMOTE = "remote"

F = TypeVar("F", bound=Callable[..., Any])


def count_request(cluster: str, verb: str, code: int | str) -> None:
    API_REQUESTS.labels(cluster, verb, str(code)).inc()


def _code_of(exc: BaseException) -> int | str:
    return exc.code if isinstance(exc, ApiError) else "error"


def counted(cluster: str, verb: str, ok: int = 200) -> Callable[[F], F]:
    """Count each call of a Cluster method as one request answered `ok`, or with the code
    of the `ApiError` it raised."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                count_request(cluster, verb, _code_of(exc))
                raise
            count_request(cluster, verb, ok)
            return result

        return call  # type: ignore[return-value]

    return decorate


def monotonic() -> float:
    """The time base of queue latencies: real time, whatever clock the queue runs on."""
    return time.monotonic()
