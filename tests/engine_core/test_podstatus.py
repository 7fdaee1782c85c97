import pytest

from cyclone.engine.core.podstatus import (
    deleted_pod_status,
    observe_stage_pod,
    pod_outputs,
    stage_events,
)


def terminated(code, message=None, reason=None):
    state = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error")}
    if message is not None:
        state["message"] = message
    return {"terminated": state}


def pod(phase, containers=None, inits=None, names=("c0",), **status):
    return {
        "metadata": {"name": "ci-build-abc"},
        "spec": {"containers": [{"name": n} for n in names]},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": n, "state": s} for n, s in (containers or {}).items()],
            "initContainerStatuses": [{"name": n, "state": s} for n, s in (inits or {}).items()],
            **status,
        },
    }


def test_pending_pod_means_the_stage_is_running():
    seen = observe_stage_pod(pod("Pending"))
    assert seen.status == {"phase": "Running", "reason": "PodPending"}
    assert not seen.finished


def test_pending_pod_explains_what_it_waits_for():
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}
    seen = observe_stage_pod(pod("Pending", containers={"c0": waiting}))
    assert seen.status["message"] == 'container "c0": ImagePullBackOff: no such image'
    unschedulable = pod(
        "Pending",
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes available"}
        ],
    )
    assert observe_stage_pod(unschedulable).status["message"] == "0/1 nodes available"


def test_running_pod_is_running():
    seen = observe_stage_pod(pod("Running", containers={"c0": {"running": {}}}))
    assert seen.status == {"phase": "Running", "reason": "PodRunning"}


def test_succeeded_pod_gives_outputs():
    seen = observe_stage_pod(pod("Succeeded", containers={"c0": terminated(0, "a:1\nb: 2\n")}))
    assert seen.status == {"phase": "Succeeded", "reason": "PodSucceed"}
    assert seen.outputs == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
    assert seen.finished


def test_failed_pod_names_container_reason_and_exit_code():
    seen = observe_stage_pod(pod("Failed", containers={"c0": terminated(2)}))
    assert seen.status == {
        "phase": "Failed",
        "reason": "PodFailed",
        "message": 'container "c0" failed: Error (exit code 2)',
    }


def test_oom_killed_workload_message_includes_detail():
    state = terminated(137, "memory limit", reason="OOMKilled")
    seen = observe_stage_pod(pod("Failed", containers={"c0": state}))
    assert seen.status["message"] == (
        'container "c0" failed: OOMKilled (exit code 137): memory limit'
    )


def test_failed_init_container_fails_the_stage():
    inits = {"csc-pull-src": terminated(128)}
    waiting = {"waiting": {"reason": "PodInitializing"}}
    seen = observe_stage_pod(pod("Failed", containers={"c0": waiting}, inits=inits))
    assert seen.status["phase"] == "Failed"
    assert 'container "csc-pull-src" failed' in seen.status["message"]


def test_evicted_pod_fails_with_pod_reason():
    seen = observe_stage_pod(pod("Failed", reason="Evicted", message="node low on memory"))
    assert seen.status == {
        "phase": "Failed", "reason": "PodFailed", "message": "node low on memory"
    }


def test_workload_result_decides_while_user_sidecars_still_run():
    names = ("c0", "wsc-db")
    db_running = {"running": {}}
    done = pod("Running", names=names, containers={"c0": terminated(0), "wsc-db": db_running})
    assert observe_stage_pod(done).status["phase"] == "Succeeded"
    failed = pod("Running", names=names, containers={"c0": terminated(1), "wsc-db": db_running})
    assert observe_stage_pod(failed).status["phase"] == "Failed"


def test_stage_waits_for_output_pushes():
    names = ("c0", "csc-push-img")
    pushing = pod(
        "Running", names=names, containers={"c0": terminated(0), "csc-push-img": {"running": {}}}
    )
    assert observe_stage_pod(pushing).status["phase"] == "Running"
    pushed = pod(
        "Succeeded", names=names, containers={"c0": terminated(0), "csc-push-img": terminated(0)}
    )
    assert observe_stage_pod(pushed).status["phase"] == "Succeeded"
    push_failed = pod(
        "Failed", names=names, containers={"c0": terminated(0), "csc-push-img": terminated(1)}
    )
    seen = observe_stage_pod(push_failed)
    assert seen.status["phase"] == "Failed"
    assert 'container "csc-push-img" failed' in seen.status["message"]


def test_workload_failure_does_not_wait_for_pushes():
    names = ("c0", "csc-push-img")
    failed = pod(
        "Running", names=names, containers={"c0": terminated(3), "csc-push-img": {"running": {}}}
    )
    assert observe_stage_pod(failed).status["phase"] == "Failed"


def test_outputs_merge_init_containers_then_workload():
    p = pod(
        "Succeeded",
        inits={"csc-pull-src": terminated(0, "LastCommitID:abc\nshared:init")},
        containers={"c0": terminated(0, "shared:workload\nversion:1")},
    )
    assert pod_outputs(p) == [
        {"key": "LastCommitID", "value": "abc"},
        {"key": "shared", "value": "workload"},
        {"key": "version", "value": "1"},
    ]


def test_sidecar_termination_messages_are_not_outputs():
    p = pod(
        "Succeeded",
        names=("c0", "wsc-x"),
        containers={"c0": terminated(0, "a:1"), "wsc-x": terminated(0, "b:2")},
    )
    assert pod_outputs(p) == [{"key": "a", "value": "1"}]


def test_unfinished_stage_has_no_outputs():
    assert observe_stage_pod(pod("Running", containers={"c0": {"running": {}}})).outputs == []


def test_only_non_normal_events_become_stage_events():
    events = [
        {"metadata": {"name": "e1"}, "type": "Normal", "reason": "Pulled", "message": "ok"},
        {
            "metadata": {"name": "e3"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "back-off",
            "lastTimestamp": "2026-05-01T12:02:00Z",
            "count": 4,
        },
        {
            "metadata": {"name": "e2", "creationTimestamp": "2026-05-01T12:01:00Z"},
            "type": "Warning",
            "reason": "FailedMount",
            "message": "no pvc",
        },
    ]
    assert stage_events(events) == [
        {"name": "e2", "reason": "FailedMount", "message": "no pvc",
         "lastTimestamp": "2026-05-01T12:01:00Z", "count": 1},
        {"name": "e3", "reason": "BackOff", "message": "back-off",
         "lastTimestamp": "2026-05-01T12:02:00Z", "count": 4},
    ]
    seen = observe_stage_pod(pod("Running"), events)
    assert [e["name"] for e in seen.events] == ["e2", "e3"]


@pytest.mark.parametrize(("name", "fragment"), [("p1", 'pod "p1"'), (None, "stage pod")])
def test_deleted_pod_fails_the_stage(name, fragment):
    status = deleted_pod_status(name)
    assert status["phase"] == "Failed" and status["reason"] == "PodDeleted"
    assert fragment in status["message"]


def test_only_pod_changes_that_can_move_the_run_wake_it():
    from cyclone.engine.core.podstatus import pod_change_matters

    pod = {"metadata": {"name": "p", "resourceVersion": "1"}, "spec": {},
           "status": {"phase": "Pending"}}
    bound = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "2"},
             "spec": {"nodeName": "n1"}}
    running = {**bound, "status": {"phase": "Running"}}
    deleting = {**running, "metadata": {**running["metadata"], "deletionTimestamp": "t"}}
    marked = {**running, "metadata": {**running["metadata"], "annotations": {
        "stage.cyclone.dev/logs-collected": "true"}}}
    assert pod_change_matters(None, pod)
    assert not pod_change_matters(pod, bound)
    assert pod_change_matters(bound, running)
    assert pod_change_matters(running, deleting)
    assert pod_change_matters(running, marked)
    assert not pod_change_matters(running, running)
