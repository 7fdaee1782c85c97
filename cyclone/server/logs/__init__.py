"""Stage container logs: the collector, the store and the routes that serve them."""

from cyclone.server.logs.collector import LogCollector
from cyclone.server.logs.collectors import LogCollectors
from cyclone.server.logs.routes import build_logs_router, log_store_for
from cyclone.server.logs.store import LogRef, LogStore, RunRef

__all__ = [
    "LogCollector",
    "LogCollectors",
    "LogRef",
    "LogStore",
    "RunRef",
    "build_logs_router",
    "log_store_for",
]
