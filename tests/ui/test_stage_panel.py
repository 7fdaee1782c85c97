"""The stage panel served by the live `cyclone up`, read as a signed-in browser would (httpx with
the session cookie): full page and htmx fragment, containers, outputs, Events, the pod's YAML
without any secret value, artifacts, the page stream and raw log, and another tenant's
session meeting 404s everywhere."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from support.live_up import LiveUp, cli_ok
from support.ui import screenshot, signed_in_client

from cyclone.api import keys

PROJECT = "stagepanel"
SECRET_VALUE = "hunter2-stagepanel-s3cret"
REF_VALUE = "keyref-stagepanel-v4lue"
MANIFESTS = r"""
kind: Project
metadata: {name: @P@}
---
kind: Stage
metadata: {name: build, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    inputs:
      arguments: [{name: GOAL, value: release}]
    spec:
      containers:
      - image: alpine:3.20
        env:
        - {name: TOKEN, value: "${secrets.cyclone-system:@P@-creds/data.token}"}
        - name: REF_TOKEN
          valueFrom: {secretKeyRef: {name: @P@-creds, key: other}}
        command:
        - sh
        - -c
        - |
          echo "building with $TOKEN and $REF_TOKEN"
          printf 'image:reg/app:7\n' > /cyclone/results/__result__
---
kind: Stage
metadata: {name: boom, labels: {project.cyclone.dev/name: @P@}}
spec:
  pod:
    spec:
      containers:
      - image: alpine:3.20
        command: [sh, -c, "echo going down; exit 3"]
---
kind: Workflow
metadata: {name: pipe, labels: {project.cyclone.dev/name: @P@}}
spec:
  globalVariables: [{name: CHANNEL, value: beta}]
  stages: [{name: build}, {name: boom, depends: [build]}]
""".replace("@P@", PROJECT)
RUN = f"/projects/{PROJECT}/workflows/pipe/runs/pipe-1"
API_RUN = f"/apis/v1alpha1/projects/{PROJECT}/workflows/pipe/workflowruns/pipe-1"


def wait_done(api: httpx.Client, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(API_RUN).json()
        if ((run.get("status") or {}).get("overall") or {}).get("phase") in (
                "Succeeded", "Failed"):
            return run
        assert time.monotonic() < deadline, run.get("status")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def finished(ui_up: LiveUp, admin_api: httpx.Client) -> Iterator[dict]:
    namespace = keys.tenant_namespace(keys.DEFAULT_TENANT)
    ui_up.call(ui_up.cluster.create({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": f"{PROJECT}-creds", "namespace": namespace},
        "data": {"token": base64.b64encode(SECRET_VALUE.encode()).decode(),
                 "other": base64.b64encode(REF_VALUE.encode()).decode()}}))
    cli_ok(ui_up, "apply", "-f", "-", input=MANIFESTS)
    cli_ok(ui_up, "run", "pipe", "-p", PROJECT, "--name", "pipe-1")
    run = wait_done(admin_api)
    assert run["status"]["stages"]["build"]["status"]["phase"] == "Succeeded", run["status"]
    deadline = time.monotonic() + 20
    while "going down" not in admin_api.get(f"{API_RUN}/logs", params={"stage": "boom"}).text:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    yield run


@pytest.fixture(scope="module")
def browser_client(ui_up: LiveUp, finished: dict) -> Iterator[httpx.Client]:
    with signed_in_client(ui_up.url, ui_up.token) as client:
        yield client


def test_the_panel_is_a_full_page_and_an_htmx_fragment(browser_client: httpx.Client) -> None:
    page = browser_client.get(f"{RUN}/stages/build")
    assert page.status_code == 200
    assert page.text.lstrip().startswith("<!doctype html>")
    assert '<section class="stage-panel" id="stage-panel" data-stage="build"' in page.text
    assert "Content-Security-Policy" in page.headers
    fragment = browser_client.get(f"{RUN}/stages/build", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<body" not in fragment.text
    assert 'data-stage="build" data-phase="Succeeded"' in fragment.text
    assert f'href="{RUN}/stages/build">Open as a page</a>' in fragment.text
    assert 'data-stream-url="/ui/streams/logs/stagepanel/pipe/pipe-1/build"' in fragment.text


def test_the_panel_lists_containers_inputs_and_outputs(browser_client: httpx.Client) -> None:
    build = browser_client.get(f"{RUN}/stages/build").text
    assert '<tr data-output="image"><td class="mono">image</td><td class="mono">reg/app:7' \
        in build
    assert '<td class="mono">GOAL</td><td class="mono">release</td>' in build
    assert '<td class="mono">CHANNEL</td><td class="mono">beta</td>' in build
    boom = browser_client.get(f"{RUN}/stages/boom").text
    row = boom.split('<tr data-container="c0">')[1].split("</tr>")[0]
    assert "alpine:3.20" in row and "terminated" in row
    assert '<td class="num">3</td>' in row
    assert 'data-phase="Failed"' in boom


def test_no_secret_value_reaches_the_pod_yaml_or_anywhere_on_the_page(
        browser_client: httpx.Client, admin_api: httpx.Client) -> None:
    page = browser_client.get(f"{RUN}/stages/build").text
    pod_yaml = page.split('<pre class="yaml pod-yaml">')[1].split("</pre>")[0]
    assert "- name: TOKEN\n      value: &#39;***&#39;" in pod_yaml
    assert "secretKeyRef:" in pod_yaml and "key: other" in pod_yaml
    assert SECRET_VALUE not in page and REF_VALUE not in page
    log = browser_client.get(f"{RUN}/stages/build/log").text
    assert SECRET_VALUE not in log and REF_VALUE not in log
    assert log == "building with *** and ***\n"


def test_the_stage_events_and_artifacts_are_listed_with_a_download_link(
        ui_up: LiveUp, browser_client: httpx.Client, admin_api: httpx.Client,
        finished: dict) -> None:
    pod = finished["status"]["stages"]["boom"]["pod"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ui_up.call(ui_up.cluster.create({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{pod['name']}.backoff", "namespace": pod["namespace"]},
        "involvedObject": {"kind": "Pod", "name": pod["name"], "namespace": pod["namespace"]},
        "reason": "BackOff", "message": "<i>restarting</i> failed container", "type": "Warning",
        "firstTimestamp": now, "lastTimestamp": now, "count": 4}))
    uploaded = admin_api.post(f"{API_RUN}/artifacts/out.tar.gz", params={"stage": "boom"},
                              content=b"tarball-bytes",
                              headers={"Content-Type": "application/gzip"})
    assert uploaded.status_code == 201, uploaded.text
    page = browser_client.get(f"{RUN}/stages/boom").text
    events = page.split('<table class="list events">')[1].split("</table>")[0]
    assert "BackOff" in events and "&lt;i&gt;restarting&lt;/i&gt; failed container" in events
    assert f"Pod/{pod['name']}" in events
    assert f'href="{RUN}/artifacts/out.tar.gz" download>' in page
    build = browser_client.get(f"{RUN}/stages/build").text
    assert "out.tar.gz" not in build
    download = browser_client.get(f"{RUN}/artifacts/out.tar.gz")
    assert download.status_code == 200 and download.content == b"tarball-bytes"
    assert "attachment" in download.headers["content-disposition"]


def test_raw_log_is_a_text_attachment_and_the_page_stream_sends_batches_then_end(
        browser_client: httpx.Client) -> None:
    raw = browser_client.get(f"{RUN}/stages/boom/log")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["content-disposition"] == 'attachment; filename="pipe-1-boom-c0.log"'
    assert raw.text == "going down\n"
    stream = browser_client.get("/ui/streams/logs/stagepanel/pipe/pipe-1/boom", timeout=30)
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text == "data: going down\n\nevent: end\ndata: \n\n"


def test_a_missing_stage_or_log_is_a_clear_404_page(browser_client: httpx.Client) -> None:
    missing = browser_client.get(f"{RUN}/stages/nope", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert "stage &#39;nope&#39; is not part of run &#39;pipe-1&#39;" in missing.text
    assert "Traceback" not in missing.text
    bad = browser_client.get(f"{RUN}/stages/..%2Fx", headers={"Accept": "text/html"})
    assert bad.status_code == 404
    no_log = browser_client.get(f"{RUN}/stages/build/log", params={"container": "ghost"})
    assert no_log.status_code == 404
    assert "no logs for stage &#39;build&#39; container &#39;ghost&#39;" in no_log.text


def test_another_tenant_meets_404_on_every_stage_route(
        ui_up: LiveUp, tenant: tuple[str, str], finished: dict) -> None:
    _, token = tenant
    with signed_in_client(ui_up.url, token) as client:
        for path in (f"{RUN}/stages/build", f"{RUN}/stages/build/log", f"{RUN}/search?q=x",
                     f"{RUN}/artifacts/out.tar.gz",
                     "/ui/streams/logs/stagepanel/pipe/pipe-1/build"):
            answer = client.get(path)
            assert answer.status_code == 404, path
            assert "building" not in answer.text


def test_the_panel_in_the_browser_shows_pod_yaml_masked(admin_page, ui_up: LiveUp,
                                                         finished: dict) -> None:
    admin_page.goto(f"{ui_up.url}{RUN}/stages/build")
    admin_page.click("#stage-tab-pod")
    yaml_text = admin_page.locator("pre.pod-yaml").inner_text()
    assert "value: '***'" in yaml_text and SECRET_VALUE not in yaml_text
    screenshot(admin_page, "stage-panel-pod-yaml")
    admin_page.click("#stage-tab-containers")
    assert admin_page.locator("#stage-tabpanel-containers").is_visible()
    assert admin_page.locator("#stage-tabpanel-pod").is_hidden()


def test_the_run_page_side_panel_shows_the_stage_log_and_search(admin_page, ui_up: LiveUp,
                                                                 finished: dict) -> None:
    admin_page.goto(f"{ui_up.url}{RUN}?stage=boom")
    admin_page.wait_for_selector("#stage-side [data-logview][data-state=done]")
    side = admin_page.locator("#stage-side")
    assert side.locator(".logview-row[data-line='1'] .lt").inner_text() == "going down"
    assert side.locator("h2.stage-title").inner_text() == "boom"
    side.locator("#stage-tab-containers").click()
    assert side.locator("#stage-tabpanel-containers tr[data-container='c0']").is_visible()
    screenshot(admin_page, "run-stage-side-panel")
