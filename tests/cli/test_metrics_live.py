"""`/metrics` of a live `cyclone up` after a real run, parsed as Prometheus parses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.live_up import LiveUp, live_up

PROJECT = "metrics-live"
MANIFESTS = f"""\
kind: Project
metadata: {{name: {PROJECT}}}
---
kind: Stage
metadata: {{name: say, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo measured output"]
---
kind: Workflow
metadata: {{name: measured, labels: {{project.cyclone.dev/name: {PROJECT}}}}}
spec:
  stages: [{{name: say}}]
"""


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveUp]:
    with live_up(tmp_path_factory.mktemp("metrics-up")) as running:
        yield running


def samples(url: str, token: str) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(f"{url}/metrics", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_a_run_show_runs_stages_queues_and_stored_log_bytes(
        instance: LiveUp, tmp_path: Path) -> None:
    manifests = tmp_path / "measured.yaml"
    manifests.write_text(MANIFESTS)
    applied = instance.run_cli("apply", "-f", str(manifests))
    assert applied.returncode == 0, applied.stderr
    ran = instance.run_cli("run", "measured", "-p", PROJECT, "--name", "measured-1", "--watch")
    assert ran.returncode == 0, ran.stdout + ran.stderr

    run_labels = {"namespace": "cyclone-system", "project": PROJECT}
    deadline = time.monotonic() + 30
    while True:
        found = samples(instance.url, instance.token)
        if value(found, "cyclone_log_bytes_stored_total", tenant="system", project=PROJECT):
            break
        assert time.monotonic() < deadline, "no stored log bytes counted"
        time.sleep(0.2)
    assert value(found, "cyclone_runs_finished_total", **run_labels, phase="Succeeded") == 1
    assert value(found, "cyclone_run_duration_seconds_count", **run_labels,
                 phase="Succeeded") == 1
    assert value(found, "cyclone_stage_duration_seconds_count", **run_labels,
                 phase="Succeeded") == 1
    assert value(found, "cyclone_runs", **run_labels, phase="Succeeded") == 1
    assert value(found, "cyclone_workqueue_adds_total", controller="workflowrun") > 0
    assert value(found, "cyclone_workqueue_work_duration_seconds_count",
                 controller="workflowrun") > 0
    assert value(found, "cyclone_kube_client_requests_total", cluster="embedded",
                 verb="PATCH", code="200") > 0
    assert not any("measured-1" in str(labels) for _, labels in found)


def test_metrics_take_the_admin_token_and_no_tenant_reads_them(instance: LiveUp) -> None:
    assert httpx.get(f"{instance.url}/metrics", timeout=10).status_code == 401
    admin = {"Authorization": f"Bearer {instance.token}"}
    issued = httpx.post(f"{instance.url}/apis/v1alpha1/tenants/system/tokens", headers=admin,
                        json={"description": "metrics probe"}, timeout=10)
    assert issued.status_code == 201, issued.text
    tenant = {"Authorization": f"Bearer {issued.json()['token']}"}
    refused = httpx.get(f"{instance.url}/metrics", headers=tenant, timeout=10)
    assert refused.status_code == 403
    assert "cyclone_" not in refused.text
    response = httpx.get(f"{instance.url}/metrics", headers=admin, timeout=10)
    assert response.status_code == 200
    assert "cyclone_runs_in_flight" in response.text
