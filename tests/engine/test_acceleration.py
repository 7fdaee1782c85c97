"""Acceleration caches: a labelled run's stages share `/root/...` caches through the tenant
PVC, an unlabelled run or one over the cache limit gets none, and cleaning empties them."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from cyclone.api import keys
from cyclone.engine.core.acceleration import LABEL_ACCELERATION, build_clean_cache_pod
from cyclone.kube import kinds

from .harness import (
    BACKENDS,
    NAMESPACE,
    PVC,
    outputs,
    shell_stage,
    workflow,
    workflow_run,
)

PROJECT = "accel"
PROBE = """
echo "before:$(cat /root/.cache/probe/mark 2>/dev/null || echo none)" >> /cyclone/results/__result__
echo "xdg:${XDG_CACHE_HOME:-unset}" >> /cyclone/results/__result__
if mkdir -p /root/.cache/probe 2>/dev/null && echo "$WORKFLOWRUN_NAME" > /root/.cache/probe/mark
then echo "wrote:yes" >> /cyclone/results/__result__
else echo "wrote:no" >> /cyclone/results/__result__
fi
"""


def _run(name: str, accelerated: bool) -> dict:
    run = workflow_run(name, "cached")
    labels = {keys.LABEL_PROJECT: PROJECT}
    if accelerated:
        labels[LABEL_ACCELERATION] = "true"
    run["metadata"]["labels"] = labels
    return run


async def _finished(env, name: str, accelerated: bool = True) -> dict:
    await env.apply(_run(name, accelerated))
    run = await env.wait_phase(name, "Succeeded", within=60)
    return run


async def _set_usage(env, usage: dict | None) -> None:
    await env.cluster.patch(kinds.NAMESPACE, NAMESPACE, {"metadata": {"annotations": {
        keys.ANNOTATION_STORAGE_USAGE: json.dumps(usage) if usage else None}}})


async def _clean(env) -> dict:
    pod = build_clean_cache_pod(PROJECT, keys.DEFAULT_TENANT, NAMESPACE, PVC)
    await env.cluster.create(pod)
    deadline = time.monotonic() + 60
    while True:
        found = await env.cluster.get(kinds.POD, pod["metadata"]["name"], NAMESPACE)
        if (found.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return found
        assert time.monotonic() < deadline, found.get("status")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_accelerated_runs_share_their_project_cache_until_over_the_limit_or_cleaned(
        env):
    await env.apply(shell_stage("probe", PROBE),
                    workflow("cached", [{"name": "probe"}]))

    first = outputs(await _finished(env, "first"), "probe")
    assert first == {"before": "none", "xdg": "/root/.cache", "wrote": "yes"}
    second = outputs(await _finished(env, "second"), "probe")
    assert second["before"] == "first"

    plain = outputs(await _finished(env, "plain", accelerated=False), "probe")
    assert plain == {"before": "none", "xdg": "unset", "wrote": "no"}

    await _set_usage(env, {"total": 1000, "used": 900, "items": {"caches": 500}})
    over = await _finished(env, "over")
    assert outputs(over, "probe") == {"before": "none", "xdg": "unset", "wrote": "no"}
    events = [e for e in (await env.cluster.list(kinds.EVENT, NAMESPACE)).items
              if e["involvedObject"].get("name") == "over"]
    assert [(e["reason"], e["type"]) for e in events] == [("AccelerationSkipped", "Warning")]
    assert "caches use 500 bytes, at or over the limit of 500" in events[0]["message"]
    await _set_usage(env, {"total": 1000, "used": 900, "items": {"caches": 499}})
    under = outputs(await _finished(env, "under"), "probe")
    assert under["before"] == "second"

    cleaned = await _clean(env)
    assert cleaned["status"]["phase"] == "Succeeded"
    after = outputs(await _finished(env, "after"), "probe")
    assert after["before"] == "none" and after["wrote"] == "yes"
