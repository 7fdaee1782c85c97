"""Nothing outlives what owns it: a run's logs and artifacts go with the run, a tenant's
namespace, data and name go with the tenant, and a new owner of the same name starts
clean."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import pytest

from cyclone.kube import kinds
from cyclone.kube.errors import NotFound

from .flows import apply_flow, expect, runs_path, shell_stage, start_run, wait_run


@pytest.fixture
def long_gc_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `cyclone up` of the stack (set up after this fixture) keeps finished runs
    uncleaned for an hour, so a test can delete a tenant while its GC is still due."""
    import support.up

    write = support.up.write_engine_config
    monkeypatch.setattr(support.up, "write_engine_config",
                        lambda data_dir, values: write(data_dir,
                                                       {**values, "gc_delay_seconds": 3600}))


async def eventually(check, within: float, what: str):
    """Poll `check` (async, returning a truthy value when done) for `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, f"{what} within {within}s"
        await asyncio.sleep(0.25)


async def stored_log(http: httpx.AsyncClient, run_path: str, marker: str) -> str | None:
    response = await http.get(f"{run_path}/logs")
    return response.text if response.status_code == 200 and marker in response.text else None


async def test_a_run_created_again_under_a_deleted_runs_name_shows_nothing_of_it(stack):
    tenant = stack.a
    old_marker, new_marker = f"old-{secrets.token_hex(4)}", f"new-{secrets.token_hex(4)}"
    await apply_flow(tenant.http, "lc", "wf", [shell_stage("build", f"echo {old_marker}")])
    run_path = f"{runs_path('lc', 'wf')}/again"
    first = await start_run(tenant.http, "lc", "wf", {"metadata": {"name": "again"}})
    done = await wait_run(tenant.http, "lc", "wf", "again")
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    await eventually(lambda: stored_log(tenant.http, run_path, old_marker), 30,
                     "the old run's log was not stored")
    expect(await tenant.http.post(f"{run_path}/artifacts/old.tgz", content=b"old tarball"), 201)
    logs_root = stack.data_dir / "logs" / tenant.name
    artifacts_root = stack.data_dir / "artifacts" / tenant.name
    old_uid = first["metadata"]["uid"]
    assert list(logs_root.glob(f"*/*/again/{old_uid}"))
    assert list(artifacts_root.glob(f"*/*/again/{old_uid}"))

    stage = expect(await tenant.http.get("/projects/lc/stages/build"), 200)
    stage["spec"]["pod"]["spec"]["containers"][0]["command"] = ["sh", "-c",
                                                                 f"echo {new_marker}"]
    expect(await tenant.http.put("/projects/lc/stages/build", json=stage), 200)
    expect(await tenant.http.delete(run_path), 204)

    async def recreated() -> dict | None:
        response = await tenant.http.post(runs_path("lc", "wf"),
                                          json={"metadata": {"name": "again"}})
        if response.status_code == 409:
            return None
        return expect(response, 201)

    second = await eventually(recreated, 60, "the run name was not free again")
    assert second["metadata"]["uid"] != old_uid
    early = await tenant.http.get(f"{run_path}/logs")
    assert old_marker not in early.text
    assert expect(await tenant.http.get(f"{run_path}/artifacts"), 200)["items"] == []
    expect(await tenant.http.get(f"{run_path}/artifacts/old.tgz"), 404)

    done = await wait_run(tenant.http, "lc", "wf", "again")
    assert done["status"]["overall"]["phase"] == "Succeeded", done["status"]
    text = await eventually(lambda: stored_log(tenant.http, run_path, new_marker), 30,
                            "the new run's log was not stored")
    assert old_marker not in text
    assert expect(await tenant.http.get(f"{run_path}/artifacts"), 200)["items"] == []

    async def old_folders_gone() -> bool:
        return not any(list(root.glob(f"*/*/again/{old_uid}"))
                       for root in (logs_root, artifacts_root))

    await eventually(old_folders_gone, 30, "the old run's folders were not removed")


async def test_deleting_a_tenant_with_a_finished_uncleaned_run_completes(long_gc_delay,
                                                                         stack):
    keep, doomed = stack.a, stack.b
    for tenant in (keep, doomed):
        await apply_flow(tenant.http, "lc", "wf", [
            shell_stage("build", f"echo line-of-{tenant.name}")])
        await start_run(tenant.http, "lc", "wf", {"metadata": {"name": "done"}})
    for tenant in (keep, doomed):
        finished = await wait_run(tenant.http, "lc", "wf", "done")
        assert finished["status"]["overall"]["phase"] == "Succeeded", finished["status"]
        assert not finished["status"].get("cleaned")
        run_path = f"{runs_path('lc', 'wf')}/done"
        await eventually(lambda t=tenant, p=run_path: stored_log(t.http, p,
                                                                 f"line-of-{t.name}"),
                         30, "the run's log was not stored")
        expect(await tenant.http.post(f"{run_path}/artifacts/out.tgz", content=b"data"), 201)
    doomed_dirs = [stack.data_dir / "logs" / doomed.name,
                   stack.data_dir / "artifacts" / doomed.name]
    assert all(path.exists() for path in doomed_dirs)

    expect(await stack.admin.delete(f"/tenants/{doomed.name}"), 204)
    again = await stack.admin.post("/tenants", json={"metadata": {"name": doomed.name}})
    if again.status_code != 201:
        assert again.status_code == 409, again.text
        assert "being deleted" in again.json()["message"]
        read = await stack.admin.get(f"/tenants/{doomed.name}")
        assert read.status_code == 404, read.text

        async def namespace_gone() -> bool:
            try:
                await stack.cluster.get(kinds.NAMESPACE, doomed.namespace)
            except NotFound:
                return True
            return False

        await eventually(namespace_gone, 90, "the tenant's namespace was not deleted")

        async def created_again() -> bool:
            response = await stack.admin.post("/tenants",
                                              json={"metadata": {"name": doomed.name}})
            assert response.status_code in (201, 409), response.text
            return response.status_code == 201

        await eventually(created_again, 30, "the tenant name was not reusable")
    async def folders_gone() -> bool:
        return not any(path.exists() for path in doomed_dirs)

    await eventually(folders_gone, 30, "the deleted tenant's stored data was not removed")
    assert (await doomed.http.get("/projects")).status_code == 401, \
        "a token of the deleted tenant works for the tenant created again under its name"

    run_path = f"{runs_path('lc', 'wf')}/done"
    kept_log = await keep.http.get(f"{run_path}/logs")
    assert kept_log.status_code == 200 and f"line-of-{keep.name}" in kept_log.text
    assert [a["name"] for a in expect(await keep.http.get(f"{run_path}/artifacts"),
                                      200)["items"]] == ["out.tgz"]
    await stack.cluster.get(kinds.NAMESPACE, keep.namespace)
