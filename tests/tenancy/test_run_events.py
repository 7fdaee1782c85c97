"""A run's Events (`GET …/workflowruns/{run}/events`) from the attacker's side: tenant `b`
never reads the Events of tenant `a`'s run or pods, not even through a run of the same
name, project and workflow in its own namespace."""

from __future__ import annotations

from datetime import UTC, datetime

from cyclone.api import keys
from cyclone.kube import kinds

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run


def event(namespace: str, name: str, involved: dict, reason: str) -> dict:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {**involved, "namespace": namespace}, "reason": reason,
            "message": f"{reason} for the test", "type": "Warning",
            "source": {"component": "test"}, "firstTimestamp": now, "lastTimestamp": now,
            "count": 1}


async def reasons(http, run: str, code: int = 200) -> list[str]:
    answer = expect(await http.get(f"{runs_path('demo', 'ci')}/{run}/events"), code)
    return [item["reason"] for item in answer.get("items", [])]


async def test_a_tenant_reads_only_the_events_of_its_own_runs(stack):
    for tenant in (stack.a, stack.b):
        await apply_flow(tenant.http, "demo", "ci", [shell_stage("hello", "echo hi")])
    run_a = await start_run(stack.a.http, "demo", "ci", {"metadata": {"name": "same-name"}})
    done = await wait_run(stack.a.http, "demo", "ci", "same-name")
    pod = done["status"]["stages"]["hello"]["pod"]
    run_ref = {"apiVersion": keys.API_VERSION, "kind": "WorkflowRun", "name": "same-name"}
    await stack.cluster.create(event(stack.a.namespace, "same-name.run-notice", run_ref,
                                     "RunNotice"))
    await stack.cluster.create(event(
        stack.a.namespace, "same-name.owned-notice",
        {**run_ref, "uid": run_a["metadata"]["uid"]}, "OwnedNotice"))
    await stack.cluster.create(event(
        stack.a.namespace, "same-name.stale-notice",
        {**run_ref, "uid": "uid-of-an-earlier-run-of-that-name"}, "StaleNotice"))
    await stack.cluster.create(event(
        pod["namespace"], f"{pod['name']}.pod-notice",
        {"apiVersion": "v1", "kind": "Pod", "name": pod["name"]}, "PodNotice"))

    seen_by_a = await reasons(stack.a.http, "same-name")
    assert {"RunNotice", "OwnedNotice", "PodNotice"} <= set(seen_by_a), seen_by_a
    assert "StaleNotice" not in seen_by_a

    await reasons(stack.b.http, "same-name", 404)
    await start_run(stack.b.http, "demo", "ci", {"metadata": {"name": "same-name"}})
    await wait_run(stack.b.http, "demo", "ci", "same-name")
    seen_by_b = await reasons(stack.b.http, "same-name")
    assert not {"RunNotice", "OwnedNotice", "PodNotice"} & set(seen_by_b), seen_by_b


    # b's run naming a's pod in its status (as a tenant that could write its own status
    # would) still shows none of a's Events.
    run_b = await stack.cluster.get(kinds.WORKFLOW_RUN, "same-name", stack.b.namespace)
    run_b["status"]["stages"]["hello"]["pod"] = pod
    await stack.cluster.replace_status(run_b)
    forged = expect(await stack.b.http.get(f"{runs_path('demo', 'ci')}/same-name"), 200)
    assert forged["status"]["stages"]["hello"]["pod"] == pod
    assert "PodNotice" not in await reasons(stack.b.http, "same-name")
