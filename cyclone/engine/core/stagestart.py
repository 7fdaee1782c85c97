"""What starting a stage writes into the run's status when no pod is created for it: a
delegation put in Waiting, stages taken over from the run a ``retryOf`` run repeats, and a
pod the quota refused (counted in the stage's status, so that the backoff before the next
try survives an engine restart). Also what building a stage's pod takes from the run: its
Resources and templates, its project, the outputs of the stages before it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.phases import FAILED, PENDING, SUCCEEDED, WAITING
from cyclone.engine.core.retries import retry_backoff
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339
from cyclone.engine.core.timeouts import timeout_of

REASON_QUOTA = "RetryOnExceededQuotaTimeout"
REASON_DELEGATION_WAITING = "DelegationWaiting"
REASON_INVALID_DELEGATION = "InvalidDelegation"
REASON_REUSED = "ReusedFromRetry"

QUOTA_REFUSALS = "quotaRefusals"
"""Stage status field: the refusals in a row of the stage's pod for exceeded quota."""
LAST_QUOTA_REFUSAL = "lastQuotaRefusalTime"
"""Stage status field: RFC 3339 time of the last of those refusals, to the microsecond (a
backoff may be shorter than a second)."""


def resources_of_run(
    run_namespace: str, listed: Iterable[tuple[str, dict]]
) -> tuple[dict[str, dict], dict[str, dict]]:
    """(the run's Resources by name, the resource templates by type) from Resources listed
    per namespace in order: templates come from any of them, a later one winning for a
    type; plain Resources from the run's namespace only."""
    resources: dict[str, dict] = {}
    resource_types: dict[str, dict] = {}
    for namespace, obj in listed:
        labels = obj["metadata"].get("labels") or {}
        if keys.LABEL_RESOURCE_TEMPLATE in labels:
            resource_types[(obj.get("spec") or {}).get("type") or ""] = obj
        elif namespace == run_namespace:
            resources[obj["metadata"]["name"]] = obj
    return resources, resource_types


def project_of_run(run: dict, workflow: dict) -> str | None:
    """The project a run belongs to: its own label, else its workflow's."""
    return ((run["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT)
            or (workflow["metadata"].get("labels") or {}).get(keys.LABEL_PROJECT))


class SucceededOutputs(Mapping[str, Mapping[str, str]]):
    """Outputs of the Succeeded stages of a run, for ``${stages.<s>.outputs.<key>}``,
    read from the stage entries when a reference names a stage: building a stage's pod
    costs the references it renders, not the size of the run. A stage that is not
    Succeeded (or has no entry) is not a key."""

    def __init__(self, stages: Mapping[str, Any]) -> None:
        self._stages = stages
        self._read: dict[str, dict[str, str]] = {}

    def __getitem__(self, stage: str) -> dict[str, str]:
        outputs = self._read.get(stage)
        if outputs is None:
            entry = self._stages.get(stage)
            if not isinstance(entry, Mapping) or (
                    entry.get("status") or {}).get("phase") != SUCCEEDED:
                raise KeyError(stage)
            outputs = {o["key"]: o.get("value") or "" for o in entry.get("outputs") or []}
            self._read[stage] = outputs
        return outputs

    def __contains__(self, stage: object) -> bool:
        try:
            self[stage]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return (name for name in list(self._stages) if name in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def upstream_outputs(state: RunState) -> SucceededOutputs:
    """Outputs of every Succeeded stage, for ``${stages.<s>.outputs.<key>}``, read on
    use (`SucceededOutputs`)."""
    return SucceededOutputs(state.stages)


def mark_delegation_waiting(
    state: RunState, stage: str, stage_obj: dict, default_timeout: float
) -> None:
    """Put a delegation stage in Waiting with its deadline; it is POSTed after the write."""
    delegation = (stage_obj.get("spec") or {}).get("delegation") or {}
    try:
        timeout = timeout_of(delegation.get("timeout"), timedelta(seconds=default_timeout))
    except ValueError as exc:
        state.set_stage(stage, FAILED, REASON_INVALID_DELEGATION, f"delegation.timeout: {exc}")
        return
    entry = state.stage(stage)
    entry["attempts"] = int(entry.get("attempts") or 0) + 1
    entry["delegation"] = {
        "url": delegation.get("url"),
        "deadline": rfc3339(state.now + timeout),
        "sent": False,
    }
    state.set_stage(stage, WAITING, REASON_DELEGATION_WAITING)


def reuse_succeeded_stages(state: RunState, previous: dict, workflow_name: str) -> None:
    """``spec.retryOf``: take over the Succeeded stages of an earlier run of the same
    workflow, with their outputs, so only the rest runs again."""
    if ((previous.get("spec") or {}).get("workflowRef") or {}).get("name") != workflow_name:
        return
    previous_name = previous["metadata"]["name"]
    for name, entry in ((previous.get("status") or {}).get("stages") or {}).items():
        if (entry.get("status") or {}).get("phase") != SUCCEEDED:
            continue
        reused = state.stage(name)
        reused["outputs"] = list(entry.get("outputs") or [])
        reused["pod"] = entry.get("pod")
        state.set_stage(name, SUCCEEDED, REASON_REUSED, f"reused from run {previous_name}")


def record_quota_refusal(state: RunState, stage: str) -> None:
    """One more refusal in a row of the stage's pod for quota, at ``state.now``."""
    entry = state.stage(stage)
    entry[QUOTA_REFUSALS] = int(entry.get(QUOTA_REFUSALS) or 0) + 1
    entry[LAST_QUOTA_REFUSAL] = state.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def clear_quota_refusals(state: RunState, stage: str) -> None:
    """The stage's pod was created: the next refusal starts a new row."""
    if QUOTA_REFUSALS in (state.stages.get(stage) or {}) or LAST_QUOTA_REFUSAL in (
            state.stages.get(stage) or {}):
        entry = state.stage(stage)
        entry.pop(QUOTA_REFUSALS, None)
        entry.pop(LAST_QUOTA_REFUSAL, None)


def quota_not_before(
    state: RunState, stage: str, backoff: timedelta, max_backoff: timedelta
) -> datetime | None:
    """When a stage whose pod the quota refused may ask again: after the last refusal, a
    backoff that doubles with each refusal in a row up to ``max_backoff``. None (now) when
    the stage is not waiting for quota or no refusal is recorded."""
    entry = state.stages.get(stage) or {}
    status = entry.get("status") or {}
    if status.get("phase") != PENDING or status.get("reason") != REASON_QUOTA:
        return None
    refusals = int(entry.get(QUOTA_REFUSALS) or 0)
    last = entry.get(LAST_QUOTA_REFUSAL)
    if refusals < 1 or not last:
        return None
    return parse_rfc3339(last) + retry_backoff(refusals, backoff, max_backoff)
