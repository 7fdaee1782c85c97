"""Deterministic, DNS-1123 names for the pods Cyclone creates."""

from __future__ import annotations

import hashlib
import re

MAX_NAME_LENGTH = 63
SUFFIX_LENGTH = 10
GC_POD_PREFIX = "wfrgc--"

_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def _short_hash(*parts: str, length: int = SUFFIX_LENGTH) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()
    return digest[:length]


def dns_label_part(text: str) -> str:
    """Lower-case, invalid characters replaced by ``-``, no leading/trailing/double dash."""
    cleaned = _INVALID.sub("-", text.lower())
    return _DASHES.sub("-", cleaned).strip("-")


def stage_pod_name(workflow: str, stage: str, run: str, attempt: int = 1,
                   run_uid: str = "") -> str:
    """``{workflow}-{stage}-{suffix}``: the same inputs always give the same name.

    The suffix is a short hash of (run, stage, attempt) — and of the full workflow name,
    so truncation never makes two workflows collide, and of the run's uid when given, so a
    run created again under a deleted run's name never meets that run's pods. Workflow and
    stage parts are cut so the name fits in 63 characters; the result is a valid DNS-1123
    label.
    """
    parts = (workflow, run, stage, str(attempt), *((run_uid,) if run_uid else ()))
    suffix = _short_hash(*parts)
    budget = MAX_NAME_LENGTH - len(suffix) - 2
    wf_part = dns_label_part(workflow)
    stage_part = dns_label_part(stage)
    if len(wf_part) + len(stage_part) > budget:
        stage_share = max(budget // 2, budget - len(wf_part))
        stage_part = stage_part[:stage_share].strip("-")
        wf_part = wf_part[: budget - len(stage_part)].strip("-")
    parts = [p for p in (wf_part, stage_part) if p]
    return "-".join([*parts, suffix])


def gc_pod_name(run: str) -> str:
    """``wfrgc--{run}``; a long run name is cut and given a hash so it stays unique."""
    name = f"{GC_POD_PREFIX}{run}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    suffix = _short_hash(run)
    keep = MAX_NAME_LENGTH - len(GC_POD_PREFIX) - len(suffix) - 1
    return f"{GC_POD_PREFIX}{run[:keep].rstrip('-')}-{suffix}"
