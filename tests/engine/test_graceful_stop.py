"""Stopping a run: its pods get SIGTERM and their grace period; a forced stop kills at once.

The stage's TERM trap reports to a `Journal` on the test's HTTP server and then waits on a
`Gate`, so the test sees the trap run and the pod still terminating after the run ended.
"""

from __future__ import annotations

import pytest
from support.clusters import eventually

from cyclone.api import keys
from cyclone.kube import kinds

from .gates import Gate, Journal
from .harness import BACKENDS, NAMESPACE, overall, shell_stage, stage_status, workflow, workflow_run

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)

POD_GONE_WITHIN = 15.0


def trapping_stage(journal: Journal, leave: Gate) -> dict:
    """A stage that, on SIGTERM, notes `term` and exits once `leave` opens."""
    script = (f"trap '{journal.note('term')}; until {leave.check()}; do sleep 0.05; done; "
              f"exit 0' TERM; {journal.note('started')}; while true; do sleep 0.05; done")
    return shell_stage("long", script)


async def started(env, journal: Journal) -> str:
    await eventually(lambda: "started" in journal.entries, timeout=60)
    run = await env.wait_run("r1", lambda r: bool(
        ((r.get("status") or {}).get("stages") or {}).get("long", {}).get("pod")), within=60)
    return run["status"]["stages"]["long"]["pod"]["name"]


async def pod(env, name: str) -> dict | None:
    return next((p for p in await env.pods() if p["metadata"]["name"] == name), None)


async def stop(env, *, force: bool = False) -> None:
    patch: dict = {"spec": {"stopped": True}}
    if force:
        patch["metadata"] = {"annotations": {keys.ANNOTATION_STOP_FORCE: "true"}}
    await env.cluster.patch(kinds.WORKFLOW_RUN, "r1", patch, NAMESPACE)


async def test_a_stop_runs_the_stages_term_trap_while_the_run_is_already_cancelled(env):
    journal, leave = Journal(), Gate()
    await env.apply(trapping_stage(journal, leave), workflow("wf", [{"name": "long"}]),
                    workflow_run("r1", "wf"))
    pod_name = await started(env, journal)

    await stop(env)
    run = await env.wait_phase("r1", "Cancelled")
    assert overall(run)["reason"] == "ManuallyStop"
    assert stage_status(run, "long")["phase"] == "Cancelled"
    await eventually(lambda: "term" in journal.entries, timeout=POD_GONE_WITHIN)
    terminating = await pod(env, pod_name)
    assert terminating is not None and terminating["metadata"].get("deletionTimestamp")
    assert terminating["metadata"].get("deletionGracePeriodSeconds") == 30

    leave.touch()
    await eventually(lambda: _gone(env, pod_name), timeout=POD_GONE_WITHIN)
    assert journal.entries == ["started", "term"]


async def test_a_forced_stop_kills_the_pod_at_once_without_its_trap(env):
    journal, leave = Journal(), Gate()
    await env.apply(trapping_stage(journal, leave), workflow("wf", [{"name": "long"}]),
                    workflow_run("r1", "wf"))
    pod_name = await started(env, journal)

    await stop(env, force=True)
    run = await env.wait_phase("r1", "Cancelled")
    assert stage_status(run, "long")["phase"] == "Cancelled"
    assert await pod(env, pod_name) is None
    assert journal.entries == ["started"]


async def test_a_forced_stop_cuts_short_the_grace_of_a_stop_before_it(env):
    journal, leave = Journal(), Gate()
    await env.apply(trapping_stage(journal, leave), workflow("wf", [{"name": "long"}]),
                    workflow_run("r1", "wf"))
    pod_name = await started(env, journal)
    await stop(env)
    await env.wait_phase("r1", "Cancelled")
    await eventually(lambda: "term" in journal.entries, timeout=POD_GONE_WITHIN)
    assert await pod(env, pod_name) is not None

    await stop(env, force=True)
    await eventually(lambda: _gone(env, pod_name), timeout=POD_GONE_WITHIN)


async def _gone(env, name: str) -> bool:
    return await pod(env, name) is None
