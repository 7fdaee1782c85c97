"""A stage of tenant b shares the host's network with tenant a's pods, so it can reach the
node agent's log server; that server answers only the API server's client certificate, so
b reads none of a's raw (unmasked) logs from it."""

from __future__ import annotations

import asyncio
import os
import secrets

import pytest

from cyclone.kube import kinds

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox drops to another uid")


async def _running_pod_logging(stack, tenant_namespace: str, marker: bytes) -> dict:
    """The pod of the tenant (in its namespace or its execution namespace) whose log, as the
    API server serves it, holds `marker`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        for pod in (await stack.cluster.list(kinds.POD)).items:
            namespace = pod["metadata"]["namespace"]
            if (pod.get("status") or {}).get("phase") != "Running" or not (
                    namespace == tenant_namespace or namespace.startswith(f"{tenant_namespace}-")):
                continue
            for container in pod["spec"]["containers"]:
                log = b"".join([chunk async for chunk in stack.cluster.pod_logs(
                    pod["metadata"]["name"], namespace, container=container["name"])])
                if marker in log:
                    return pod
        await asyncio.sleep(0.5)
    raise AssertionError(f"no pod of {tenant_namespace} logged {marker!r} within 60s")


def _attempt(index: int, url: str, marker: str) -> str:
    """Record `leaked`, `answered` (any HTTP answer), `nocurl` or `refused` for one URL."""
    return (f"out=$(curl -sk --max-time 10 '{url}' 2>/dev/null); rc=$?; "
            f"case \"$out\" in *{marker}*) r=leaked;; *) "
            "if [ $rc -eq 0 ]; then r=answered; elif [ $rc -eq 127 ]; then r=nocurl; "
            "else r=refused; fi;; esac; "
            f"echo \"url{index}:$r\" >> /cyclone/results/__result__")


async def test_a_stage_of_another_tenant_cannot_fetch_raw_logs_from_the_log_server(
    stack,
) -> None:
    ports = sorted({
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        for node in (await stack.cluster.list(kinds.NODE)).items
    } - {0})
    if stack.backend == "embedded":
        assert ports == [], "the embedded cluster's node agent needs no log server"
        return
    assert ports, "the kube stack's node agent serves logs to the API server"

    marker = f"a-secret-{secrets.token_hex(4)}"
    await apply_flow(stack.a.http, "talk", "talk",
                     [shell_stage("talk", f"echo {marker}; sleep 120")])
    talking = await start_run(stack.a.http, "talk", "talk")
    try:
        pod = await _running_pod_logging(stack, stack.a.namespace, marker.encode())
        urls = [f"https://127.0.0.1:{port}/containerLogs/{pod['metadata']['namespace']}/"
                f"{pod['metadata']['name']}/{container['name']}"
                for port in ports for container in pod["spec"]["containers"]]
        script = "; ".join(_attempt(i, url, marker) for i, url in enumerate(urls))
        await apply_flow(stack.b.http, "probe", "probe", [shell_stage("probe", script)])
        run = await start_run(stack.b.http, "probe", "probe")
        done = await wait_run(stack.b.http, "probe", "probe", run["metadata"]["name"])
    finally:
        stop = f"{runs_path('talk', 'talk')}/{talking['metadata']['name']}/stop"
        expect(await stack.a.http.put(stop), 200)

    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    entry = done["status"]["stages"]["probe"]
    results = {o["key"]: o["value"] for o in entry.get("outputs") or []}
    assert results == {f"url{i}": "refused" for i in range(len(urls))}, results
