from cyclone.engine.core.gcpod import build_gc_pod, gc_command

from .podchecks import assert_valid_pod


def test_gc_pod_removes_the_run_data_from_the_pvc():
    pod = build_gc_pod(
        "ci-run-1",
        "cyclone-devops-worker",
        "cyclone-pvc-devops",
        workflow="ci",
        project="shop",
        meta_namespace="cyclone-devops",
    )
    assert_valid_pod(pod)
    assert pod["metadata"]["name"] == "wfrgc--ci-run-1"
    assert pod["metadata"]["namespace"] == "cyclone-devops-worker"
    assert pod["metadata"]["labels"] == {
        "pod.kubernetes.io/created-by": "cyclone",
        "pod.kubernetes.io/kind": "gc",
        "workflowrun.cyclone.dev/name": "ci-run-1",
        "workflow.cyclone.dev/name": "ci",
        "project.cyclone.dev/name": "shop",
    }
    assert pod["metadata"]["annotations"] == {"cyclone.dev/meta-namespace": "cyclone-devops"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["command"] == ["sh", "-c", "rm -rf /data/workflowruns/ci-run-1"]
    assert container["volumeMounts"] == [{"name": "cyclone-data", "mountPath": "/data"}]
    assert spec["volumes"] == [
        {"name": "cyclone-data", "persistentVolumeClaim": {"claimName": "cyclone-pvc-devops"}}
    ]


def test_gc_command_quotes_the_path():
    assert gc_command("a b") == ["sh", "-c", "rm -rf '/data/workflowruns/a b'"]


def test_gc_pod_options():
    pod = build_gc_pod(
        "r" * 70, "ns", "pvc", "alpine:3", resources={"requests": {"cpu": "10m"}},
        service_account="gc",
    )
    assert_valid_pod(pod)
    assert pod["spec"]["containers"][0]["image"] == "alpine:3"
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "10m"}}
    assert pod["spec"]["serviceAccountName"] == "gc"
    assert len(pod["metadata"]["name"]) <= 63



def test_a_gc_pod_refused_by_a_gone_or_terminating_namespace_is_not_retried() -> None:
    from cyclone.engine.core.gcpod import gc_pod_refused_for_good

    assert gc_pod_refused_for_good(404, 'namespaces "cyclone-t" not found')
    assert gc_pod_refused_for_good(
        403, 'pods "wfrgc--r" is forbidden: unable to create new content in namespace '
             'cyclone-t because it is being terminated')
    assert not gc_pod_refused_for_good(
        403, 'pods "wfrgc--r" is forbidden: exceeded quota: q, requested: limits.cpu=200m')
    assert not gc_pod_refused_for_good(409, "conflict")
    assert not gc_pod_refused_for_good(500, "because it is being terminated")


def test_a_run_marked_to_collect_now_is_due_when_it_ended():
    from datetime import UTC, datetime, timedelta

    from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW, gc_due

    ended = datetime(2026, 1, 1, tzinfo=UTC)
    assert gc_due(ended, 300, {}) == ended + timedelta(seconds=300)
    assert gc_due(ended, 300, {ANNOTATION_COLLECT_NOW: "true"}) == ended
    assert gc_due(ended, 300, {ANNOTATION_COLLECT_NOW: "no"}) == ended + timedelta(seconds=300)


def test_a_cleanup_takes_the_finished_uncleaned_runs_only():
    from cyclone.engine.core.gcpod import ANNOTATION_COLLECT_NOW, cleanup_candidates

    def run(name: str, phase: str | None, cleaned: bool = False, **meta: object) -> dict:
        status = {"overall": {"phase": phase}} if phase else {}
        if cleaned:
            status["cleaned"] = True
        return {"metadata": {"name": name, **meta}, "status": status}

    assert cleanup_candidates([
        run("ok", "Succeeded"), run("bad", "Failed"), run("stopped", "Cancelled"),
        run("busy", "Running"), run("new", None), run("done", "Succeeded", cleaned=True),
        run("going", "Failed", deletionTimestamp="2026-01-01T00:00:00Z"),
        run("marked", "Failed", annotations={ANNOTATION_COLLECT_NOW: "true"}),
    ]) == ["bad", "ok", "stopped"]


def test_the_cache_cleaning_pod_runs_as_the_gc_pod_does():
    from cyclone.engine.core.acceleration import build_clean_cache_pod

    settings = {"image": "mirror.example/busybox:1.36", "service_account": "gc",
                "resources": {"requests": {"cpu": "10m"}, "limits": {"cpu": "100m"}}}
    gc = build_gc_pod("r1", "ns", "pvc", **settings)
    clean = build_clean_cache_pod("shop", "devops", "ns", "pvc", **settings)
    assert_valid_pod(clean)

    def how_it_runs(pod: dict) -> dict:
        return {**pod["spec"], "containers": [
            {k: v for k, v in c.items() if k not in ("name", "command")}
            for c in pod["spec"]["containers"]]}

    assert how_it_runs(clean) == how_it_runs(gc)
    assert clean["spec"]["containers"][0]["image"] == "mirror.example/busybox:1.36"
