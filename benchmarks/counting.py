"""A Cluster proxy that counts the calls made through it, by method."""

from __future__ import annotations

from collections import Counter
from typing import Any

WRITES = ("create", "replace", "replace_status", "patch", "delete", "bind_pod")
READS = ("get", "list", "watch", "pod_logs")


class CountingCluster:
    """Every call of a Cluster method is counted (a watch counts once, as one stream)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.calls: Counter[str] = Counter()

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in WRITES)

    @property
    def reads(self) -> int:
        return sum(self.calls[name] for name in READS)

    def snapshot(self) -> Counter[str]:
        return Counter(self.calls)

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self._inner, attribute)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[attribute] += 1
            if attribute == "patch" and kwargs.get("subresource") == "status":
                self.calls["patch_status"] += 1  # also counted as a patch
            if attribute in ("patch", "create", "replace", "replace_status") and (
                    _is_stage_chunk(args)):
                self.calls["stage_chunk_writes"] += 1  # also counted as its verb
                if attribute == "replace_status" or kwargs.get("subresource") == "status":
                    self.calls["stage_chunk_status_writes"] += 1
            return target(*args, **kwargs)

        return counted


def _is_stage_chunk(args: tuple) -> bool:
    """Whether a write's first argument (a Kind, or the object written) is a stage chunk."""
    first = args[0] if args else None
    kind = getattr(first, "kind", None) if not isinstance(first, dict) else first.get("kind")
    return kind == "WorkflowRunStages"


def split(calls: Counter[str]) -> tuple[int, int]:
    """(reads, writes) among a Counter of calls."""
    return (sum(calls[name] for name in READS), sum(calls[name] for name in WRITES))
