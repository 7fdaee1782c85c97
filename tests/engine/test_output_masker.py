"""The engine's output masker reads every secret a stage pod could see, and only those."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from cyclone.api import keys
from cyclone.engine.controllers.observe import output_masker
from cyclone.engine.core.observing import RetryPolicy, has_termination_messages, observe_pod
from cyclone.engine.core.runstate import RunState
from cyclone.kube.embedded import EmbeddedCluster

NS = "cyclone-devops"
OTHER = "cyclone-other"


def _secret(namespace: str, name: str, data: dict[str, str], labels: dict | None = None
            ) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def _pod(message: str, *, phase: str = "Succeeded", exit_code: int = 0,
         reason: str = "Completed") -> dict:
    return {
        "metadata": {"name": "wf-s-1", "namespace": NS},
        "spec": {"containers": [{"name": "main", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "a"}}}],
            "envFrom": [{"secretRef": {"name": "all-keys"}}]}],
            "volumes": [{"name": "v", "secret": {"secretName": "mounted"}}]},
        "status": {"phase": phase, "containerStatuses": [{"name": "main", "state": {
            "terminated": {"exitCode": exit_code, "reason": reason, "message": message}}}]},
    }


async def _cluster(tmp_path) -> EmbeddedCluster:
    cluster = EmbeddedCluster(tmp_path / "cluster.db")
    await cluster.start()
    for namespace in (NS, OTHER):
        await cluster.create({"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}})
    spec = json.dumps({"type": "General", "general": [{"name": "K", "value": "general-val"}]})
    for secret in (
        _secret(NS, "env-secret", {"a": "env-value-a", "b": "unread-key"}),
        _secret(NS, "all-keys", {"x": "envfrom-value"}),
        _secret(NS, "mounted", {"pem": "line-one-abcdef\nline-two-ghijkl\n"}),
        _secret(NS, "rendered", {"v": "rendered-value"}),
        _secret(NS, "env", {"integration": spec}, {keys.LABEL_INTEGRATION_TYPE: "General"}),
        _secret(OTHER, "theirs", {"v": "other-tenant-value"}),
    ):
        await cluster.create(secret)
    return cluster


async def test_masker_covers_pod_secrets_references_and_integrations(tmp_path) -> None:
    cluster = await _cluster(tmp_path)
    try:
        run = {"metadata": {"name": "r", "namespace": NS}, "spec": {"globalVariables": [
            {"name": "V", "value": f"${{secrets.{NS}:rendered/data.v}}"},
            {"name": "W", "value": f"${{secrets.{OTHER}:theirs/data.v}}"}]}}
        pod = _pod("")
        masker = await output_masker(cluster, cluster, run, [run["spec"]], pod)
        text = ("env-value-a envfrom-value line-two-ghijkl rendered-value general-val "
                "unread-key other-tenant-value")
        assert masker.mask_text(text) == "*** *** *** *** *** unread-key other-tenant-value"
    finally:
        await cluster.close()


async def test_observed_outputs_and_failure_message_are_masked(tmp_path) -> None:
    cluster = await _cluster(tmp_path)
    try:
        run = {"metadata": {"name": "r", "namespace": NS}, "spec": {},
               "status": {"stages": {"s": {"status": {"phase": "Running"}}}}}
        pod = _pod("token:env-value-a\nplain:ok\n")
        assert has_termination_messages(pod)
        masker = await output_masker(cluster, cluster, run, [], pod)
        state = RunState(run, datetime.now(UTC))
        observe_pod(state, "s", pod, RetryPolicy(0, None), None, masker)
        assert state.stages["s"]["outputs"] == [{"key": "token", "value": "***"},
                                                {"key": "plain", "value": "ok"}]
        failed = _pod("log tail envfrom-value", phase="Failed", exit_code=1,
                      reason="OOMKilled")
        run["status"] = {"stages": {"s": {"status": {"phase": "Running"}}}}
        state = RunState(run, datetime.now(UTC))
        observe_pod(state, "s", failed, RetryPolicy(0, None), None, masker)
        message = state.stages["s"]["status"]["message"]
        assert "envfrom-value" not in message and "***" in message
    finally:
        await cluster.close()


def test_pods_without_termination_messages_need_no_masker() -> None:
    assert not has_termination_messages(None)
    assert not has_termination_messages({"status": {"containerStatuses": [
        {"name": "main", "state": {"running": {}}}]}})
