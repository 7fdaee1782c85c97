"""What starting a stage writes when no pod comes of it, and the outputs later stages see."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cyclone.api import keys
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.stagestart import (
    clear_quota_refusals,
    mark_delegation_waiting,
    project_of_run,
    quota_not_before,
    record_quota_refusal,
    resources_of_run,
    reuse_succeeded_stages,
    upstream_outputs,
)
from cyclone.engine.core.timefmt import rfc3339

from .fixtures import NOW

SECOND = timedelta(seconds=1)
QUOTA = "RetryOnExceededQuotaTimeout"


def state_of(stages: dict[str, dict] | None = None, now=NOW) -> RunState:
    return RunState({"metadata": {"name": "r", "namespace": "ns"},
                     "spec": {"workflowRef": {"name": "wf"}},
                     "status": {"stages": stages or {}}}, now)


def refused(state: RunState, stage: str = "a") -> None:
    record_quota_refusal(state, stage)
    state.set_stage(stage, "Pending", QUOTA, "exceeded quota")


def test_each_refusal_in_a_row_is_counted_with_its_time_to_the_microsecond():
    now = NOW + timedelta(microseconds=250000)
    state = state_of(now=now)
    refused(state)
    refused(state)
    assert state.stages["a"]["quotaRefusals"] == 2
    assert state.stages["a"]["lastQuotaRefusalTime"] == "2026-05-01T12:00:00.250000Z"


@pytest.mark.parametrize(("refusals", "wait"), [(1, 1), (2, 2), (3, 4), (4, 4), (60, 4)])
def test_the_next_try_waits_a_backoff_doubling_per_refusal_up_to_the_max(refusals, wait):
    last = NOW + timedelta(milliseconds=300)
    state = state_of({"a": {"status": {"phase": "Pending", "reason": QUOTA},
                            "quotaRefusals": refusals,
                            "lastQuotaRefusalTime": last.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
    assert quota_not_before(state, "a", SECOND, 4 * SECOND) == last + wait * SECOND


def test_a_stage_not_waiting_for_quota_or_without_a_count_may_start_now():
    stored = {"quotaRefusals": 3, "lastQuotaRefusalTime": rfc3339(NOW)}
    state = state_of({
        "running": {"status": {"phase": "Running"}, **stored},
        "retrying": {"status": {"phase": "Pending", "reason": "RetryAfterFailure"}, **stored},
        "uncounted": {"status": {"phase": "Pending", "reason": QUOTA}},
    })
    for stage in ("running", "retrying", "uncounted", "absent"):
        assert quota_not_before(state, stage, SECOND, 4 * SECOND) is None


def test_a_created_pod_ends_the_row_of_refusals():
    state = state_of()
    refused(state)
    clear_quota_refusals(state, "a")
    assert "quotaRefusals" not in state.stages["a"]
    assert "lastQuotaRefusalTime" not in state.stages["a"]
    refused(state)
    assert state.stages["a"]["quotaRefusals"] == 1


def test_clearing_a_stage_never_refused_changes_nothing():
    state = state_of({"a": {"status": {"phase": "Pending"}}})
    clear_quota_refusals(state, "a")
    assert not state.changed


def test_a_delegation_waits_until_its_timeout_with_one_more_attempt():
    state = state_of({"approve": {"attempts": 1}})
    mark_delegation_waiting(state, "approve",
                            {"spec": {"delegation": {"url": "http://x", "timeout": "5m"}}}, 60)
    entry = state.stages["approve"]
    assert entry["status"]["phase"] == "Waiting"
    assert entry["status"]["reason"] == "DelegationWaiting"
    assert entry["attempts"] == 2
    assert entry["delegation"] == {"url": "http://x", "deadline": rfc3339(NOW + 300 * SECOND),
                                   "sent": False}


def test_a_delegation_without_a_timeout_takes_the_default():
    state = state_of()
    mark_delegation_waiting(state, "approve", {"spec": {"delegation": {"url": "u"}}}, 60)
    assert state.stages["approve"]["delegation"]["deadline"] == rfc3339(NOW + 60 * SECOND)


def test_a_delegation_with_an_unreadable_timeout_fails():
    state = state_of()
    mark_delegation_waiting(state, "approve",
                            {"spec": {"delegation": {"url": "u", "timeout": "soon"}}}, 60)
    assert state.stage_phase("approve") == "Failed"
    assert state.stages["approve"]["status"]["reason"] == "InvalidDelegation"
    assert "delegation" not in state.stages["approve"]


def previous_run(workflow: str = "wf") -> dict:
    return {"metadata": {"name": "r0"}, "spec": {"workflowRef": {"name": workflow}},
            "status": {"stages": {
                "a": {"status": {"phase": "Succeeded"}, "pod": {"name": "p-a"},
                      "outputs": [{"key": "k", "value": "v"}]},
                "b": {"status": {"phase": "Failed"}, "pod": {"name": "p-b"}},
            }}}


def test_a_retry_takes_over_the_succeeded_stages_of_the_run_it_repeats():
    state = state_of()
    reuse_succeeded_stages(state, previous_run(), "wf")
    assert state.stages["a"]["status"]["reason"] == "ReusedFromRetry"
    assert state.stages["a"]["status"]["message"] == "reused from run r0"
    assert state.stages["a"]["outputs"] == [{"key": "k", "value": "v"}]
    assert state.stages["a"]["pod"] == {"name": "p-a"}
    assert "b" not in state.stages


def test_a_retry_of_another_workflows_run_takes_over_nothing():
    state = state_of()
    reuse_succeeded_stages(state, previous_run("other"), "wf")
    assert state.stages == {}


def test_later_stages_see_the_outputs_of_succeeded_stages_only():
    state = state_of({
        "a": {"status": {"phase": "Succeeded"}, "outputs": [{"key": "k", "value": "v"},
                                                             {"key": "empty"}]},
        "b": {"status": {"phase": "Failed"}, "outputs": [{"key": "k", "value": "x"}]},
        "c": {"status": {"phase": "Succeeded"}},
    })
    assert upstream_outputs(state) == {"a": {"k": "v", "empty": ""}, "c": {}}


@pytest.mark.parametrize("seed", range(30))
def test_outputs_read_on_use_equal_those_of_every_succeeded_stage(seed):
    rng = random.Random(seed)
    stages: dict[str, dict] = {}
    for index in range(rng.randint(0, 12)):
        entry: dict = {}
        if rng.random() < 0.8:
            entry["status"] = {"phase": rng.choice(
                ["Succeeded", "Succeeded", "Failed", "Running", "Pending"])}
        if rng.random() < 0.7:
            entry["outputs"] = [{"key": f"k{key}", **({"value": f"v{key}"}
                                                     if rng.random() < 0.8 else {})}
                                for key in range(rng.randint(0, 3))]
        stages[f"s{index}"] = entry
    every = {
        name: {o["key"]: o.get("value") or "" for o in entry.get("outputs") or []}
        for name, entry in stages.items()
        if (entry.get("status") or {}).get("phase") == "Succeeded"
    }
    outputs = upstream_outputs(state_of(stages))
    for name in rng.sample([*stages, "unknown"], k=min(4, len(stages) + 1)):
        assert (name in outputs) == (name in every)
        if name in every:
            assert outputs[name] == every[name]
    assert dict(outputs) == every and len(outputs) == len(every)


def resource(name: str, type_: str = "Git", template: bool = False) -> dict:
    labels = {keys.LABEL_RESOURCE_TEMPLATE: "true"} if template else {}
    return {"metadata": {"name": name, "labels": labels}, "spec": {"type": type_}}


def test_a_run_sees_its_own_resources_and_templates_from_every_namespace_later_ones_winning():
    listed = [("system", resource("git-template", "Git", template=True)),
              ("system", resource("shared")),
              ("tenant", resource("git-tenant", "Git", template=True)),
              ("tenant", resource("src"))]
    resources, templates = resources_of_run("tenant", listed)
    assert list(resources) == ["src"]
    assert templates == {"Git": listed[2][1]}


def test_a_run_belongs_to_its_own_project_else_to_its_workflows():
    labelled = {"metadata": {"labels": {keys.LABEL_PROJECT: "p1"}}}
    bare = {"metadata": {}}
    assert project_of_run(labelled, {"metadata": {"labels": {keys.LABEL_PROJECT: "p2"}}}) == "p1"
    assert project_of_run(bare, {"metadata": {"labels": {keys.LABEL_PROJECT: "p2"}}}) == "p2"
    assert project_of_run(bare, bare) is None
