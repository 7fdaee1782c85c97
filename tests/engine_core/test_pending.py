"""Why a stage pod has not started, and when its stage stops waiting for it. The pod
statuses are the shapes a kubelet (containerd) and kube-scheduler write."""

from __future__ import annotations

import copy
from datetime import timedelta

from cyclone.engine.core.observing import RetryPolicy, observe_pod
from cyclone.engine.core.pending import (
    claims_to_read,
    pending_deadline,
    pending_reason,
    waiting_since,
)
from cyclone.engine.core.runstate import RunState
from cyclone.engine.core.timefmt import rfc3339

from .fixtures import NOW

SECOND = timedelta(seconds=1)
CREATED = NOW - 100 * SECOND
PULL_FAILED = (
    'rpc error: code = Unknown desc = failed to pull and unpack image '
    '"docker.io/cyclone/missing:0.1.0": failed to resolve reference '
    '"docker.io/cyclone/missing:0.1.0": failed to do request: Head '
    '"https://registry-1.docker.io/v2/cyclone/missing/manifests/0.1.0": dial tcp: lookup '
    'registry-1.docker.io: Temporary failure in name resolution')
UNBOUND = "0/1 nodes are available: 1 pod has unbound immediate PersistentVolumeClaims."


def kubelet_pod(main_state: dict, init_states: dict[str, dict] | None = None,
                conditions: list[dict] | None = None, phase: str = "Pending") -> dict:
    """A stage pod as the API server returns it from a real node."""
    init_states = init_states or {}
    return {
        "metadata": {"name": "ci-build-x1", "namespace": "cyclone-system",
                     "creationTimestamp": rfc3339(CREATED)},
        "spec": {
            "nodeName": "localhost",
            "initContainers": [{"name": n, "image": "cyclone/resolver-git:0.1.0"}
                               for n in init_states],
            "containers": [{"name": "main", "image": "cyclone/missing:0.1.0"}],
            "volumes": [{"name": "default-pvc",
                         "persistentVolumeClaim": {"claimName": "cyclone-pvc-system"}}],
        },
        "status": {
            "phase": phase,
            "conditions": conditions or [
                {"type": "Initialized", "status": "True", "lastProbeTime": None},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [main]"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
                 "message": "containers with unready status: [main]"},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None},
            ],
            "hostIP": "10.0.2.15", "podIP": "10.88.0.7",
            "startTime": rfc3339(CREATED + SECOND),
            "initContainerStatuses": [
                {"name": n, "state": s, "lastState": {}, "ready": False, "restartCount": 0,
                 "image": "cyclone/resolver-git:0.1.0", "imageID": ""}
                for n, s in init_states.items()],
            "containerStatuses": [
                {"name": "main", "state": main_state, "lastState": {}, "ready": False,
                 "restartCount": 0, "image": "cyclone/missing:0.1.0", "imageID": "",
                 "started": False}],
        },
    }


def err_image_pull() -> dict:
    return kubelet_pod({"waiting": {"reason": "ErrImagePull", "message": PULL_FAILED}})


def image_pull_back_off() -> dict:
    return kubelet_pod({"waiting": {
        "reason": "ImagePullBackOff",
        "message": 'Back-off pulling image "cyclone/missing:0.1.0"'}})


def unschedulable(message: str = UNBOUND) -> dict:
    pod = kubelet_pod({}, conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastProbeTime": None,
        "lastTransitionTime": rfc3339(CREATED)}])
    pod["spec"].pop("nodeName")
    for key in ("hostIP", "podIP", "startTime", "containerStatuses", "initContainerStatuses"):
        pod["status"].pop(key)
    return pod


def claim(phase: str, storage_class: str | None = None) -> dict:
    spec = {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": "cyclone-pvc-system", "namespace": "cyclone-system"},
            "spec": spec, "status": {"phase": phase}}


def test_an_image_pull_error_is_the_kubelets_reason_and_message():
    found = pending_reason(err_image_pull())
    assert found.reason == "ErrImagePull"
    assert found.message == f'container "main": ErrImagePull: {PULL_FAILED}'


def test_an_image_pull_back_off_is_the_kubelets_reason_and_message():
    found = pending_reason(image_pull_back_off())
    assert found.reason == "ImagePullBackOff"
    assert found.message == (
        'container "main": ImagePullBackOff: Back-off pulling image "cyclone/missing:0.1.0"')


def test_an_init_container_that_cannot_pull_is_named_before_the_waiting_workload():
    pod = kubelet_pod({"waiting": {"reason": "PodInitializing"}}, {
        "csc-inputs": {"waiting": {"reason": "ErrImagePull", "message": PULL_FAILED}}})
    found = pending_reason(pod)
    assert (found.reason, found.message.split(":")[0]) == (
        "ErrImagePull", 'container "csc-inputs"')


def test_routine_waiting_is_no_reason():
    assert pending_reason(kubelet_pod({"waiting": {"reason": "ContainerCreating"}})) is None


def test_the_schedulers_refusal_is_its_message():
    found = pending_reason(unschedulable(
        "0/1 nodes are available: 1 node(s) didn't match node selector."))
    assert found.reason == "Unschedulable"
    assert found.message == "0/1 nodes are available: 1 node(s) didn't match node selector."


def test_a_refused_pod_names_its_unbound_claim_before_the_schedulers_message():
    pod = unschedulable()
    assert claims_to_read(pod) == ["cyclone-pvc-system"]
    found = pending_reason(pod, {"cyclone-pvc-system": claim("Pending")})
    assert found.reason == "PersistentVolumeClaimNotBound"
    assert found.message == "PersistentVolumeClaim cyclone-pvc-system is not bound " \
                            "(no storage class)"
    found = pending_reason(pod, {"cyclone-pvc-system": claim("Pending", "fast")})
    assert found.message.endswith("(storage class fast)")
    missing = pending_reason(pod, {"cyclone-pvc-system": None})
    assert missing.message == "PersistentVolumeClaim cyclone-pvc-system does not exist"


def test_a_bound_claim_leaves_the_schedulers_message():
    found = pending_reason(unschedulable(), {"cyclone-pvc-system": claim("Bound")})
    assert found.message == UNBOUND


def test_claims_are_read_only_once_the_scheduler_refused_the_pod():
    assert claims_to_read(err_image_pull()) == []
    assert claims_to_read(kubelet_pod({}, conditions=[])) == []


def test_a_pod_waits_from_its_creation_or_its_last_finished_init_container():
    assert waiting_since(err_image_pull()) == 0 * SECOND
    after_inputs = kubelet_pod({"waiting": {"reason": "ErrImagePull"}}, {
        "csc-inputs": {"terminated": {"exitCode": 0, "reason": "Completed",
                                      "finishedAt": rfc3339(CREATED + 90 * SECOND)}}})
    assert waiting_since(after_inputs) == 90 * SECOND
    made = NOW + 5 * 365 * 24 * 3600 * SECOND
    assert pending_deadline(after_inputs, 30, made) == made + 120 * SECOND


def test_a_pod_with_a_running_container_or_past_pending_is_not_waiting():
    cloning = kubelet_pod({"waiting": {"reason": "PodInitializing"}},
                          {"csc-inputs": {"running": {"startedAt": rfc3339(NOW)}}})
    assert waiting_since(cloning) is None
    assert waiting_since(kubelet_pod({"running": {}}, phase="Running")) is None
    assert pending_deadline(err_image_pull(), 0, CREATED) is None
    assert pending_deadline(err_image_pull(), 30, CREATED) == CREATED + 30 * SECOND


def running_state() -> RunState:
    return RunState({"metadata": {"name": "r", "namespace": "cyclone-system"}, "spec": {},
                     "status": {"stages": {"build": {
                         "status": {"phase": "Running", "reason": "StagePodCreated",
                                    "lastTransitionTime": rfc3339(CREATED)},
                         "pod": {"name": "ci-build-x1", "namespace": "cyclone-system"},
                         "attempts": 1}}}}, NOW)


def test_a_waiting_pod_shows_its_reason_and_the_time_its_stage_fails():
    state = running_state()
    deadline = observe_pod(state, "build", image_pull_back_off(), RetryPolicy(0, None),
                           pending_timeout_seconds=300)
    status = state.stages["build"]["status"]
    assert (status["phase"], status["reason"]) == ("Running", "PodPending")
    assert status["message"].startswith('container "main": ImagePullBackOff')
    assert deadline == CREATED + 300 * SECOND


def test_a_pod_waiting_past_the_timeout_fails_its_stage_with_the_last_reason():
    state = running_state()
    assert observe_pod(state, "build", err_image_pull(), RetryPolicy(0, None),
                       pending_timeout_seconds=60) is None
    status = state.stages["build"]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "ErrImagePull")
    assert status["message"] == (
        f'pod "ci-build-x1" did not start within 60s: container "main": ErrImagePull: '
        f'{PULL_FAILED}')


def test_a_pod_past_the_timeout_with_no_reason_now_fails_with_the_one_shown_before():
    state = running_state()
    observe_pod(state, "build", image_pull_back_off(), RetryPolicy(0, None),
                pending_timeout_seconds=300)
    state.now = NOW + 300 * SECOND
    between = kubelet_pod({"waiting": {"reason": "ContainerCreating"}})
    observe_pod(state, "build", between, RetryPolicy(0, None), pending_timeout_seconds=300)
    status = state.stages["build"]["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "PodPending")
    assert status["message"].endswith('container "main": ImagePullBackOff: '
                                      'Back-off pulling image "cyclone/missing:0.1.0"')


def test_a_waiting_pod_past_the_timeout_is_retried_when_retries_are_left():
    state = running_state()
    observe_pod(state, "build", unschedulable(), RetryPolicy(1, None),
                claims={"cyclone-pvc-system": claim("Pending")}, pending_timeout_seconds=60)
    status = state.stages["build"]["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "RetryAfterFailure")
    assert "PersistentVolumeClaim cyclone-pvc-system is not bound" in status["message"]


def test_the_wait_is_counted_on_the_engines_clock_from_when_it_made_the_pod():
    state = running_state()
    later = NOW + 5 * 365 * 24 * 3600 * SECOND
    state.stages["build"]["status"]["lastTransitionTime"] = rfc3339(later)
    state.now = later + 10 * SECOND
    deadline = observe_pod(state, "build", err_image_pull(), RetryPolicy(0, None),
                           pending_timeout_seconds=60)
    assert state.stages["build"]["status"]["phase"] == "Running"
    assert deadline == later + 60 * SECOND


def test_no_timeout_waits_forever():
    state = running_state()
    state.now = NOW + 10**6 * SECOND
    assert observe_pod(state, "build", copy.deepcopy(err_image_pull()), RetryPolicy(0, None),
                       pending_timeout_seconds=0) is None
    assert state.stages["build"]["status"]["phase"] == "Running"


def test_a_pod_refused_for_cpu_shows_the_schedulers_reason_though_its_claim_waits():
    insufficient_cpu = "0/1 nodes are available: 1 Insufficient cpu."
    pod = unschedulable(insufficient_cpu)
    waits_for_first_consumer = {"cyclone-pvc-system": claim("Pending", "standard")}
    assert claims_to_read(pod) == []
    found = pending_reason(pod, waits_for_first_consumer)
    assert (found.reason, found.message) == ("Unschedulable", insufficient_cpu)


def test_a_refusal_about_volumes_names_the_unbound_claim():
    pod = unschedulable("0/1 nodes are available: 1 node(s) didn't find available "
                        "persistent volumes to bind.")
    assert claims_to_read(pod) == ["cyclone-pvc-system"]
    found = pending_reason(pod, {"cyclone-pvc-system": claim("Pending", "standard")})
    assert found.reason == "PersistentVolumeClaimNotBound"


def test_a_huge_or_infinite_timeout_counts_as_thirty_days():
    bound = CREATED + 30 * 24 * 3600 * SECOND
    assert pending_deadline(err_image_pull(), 1e12, CREATED) == bound
    assert pending_deadline(err_image_pull(), float("inf"), CREATED) == bound
