"""Cyclone installed the way deploy/README.md tells an operator to: the commands of its
install block (a real `helm install` of deploy/helm/cyclone with a real Helm 3) on a plane
whose only node is a real kubelet with containerd, with Services (kube-proxy) and cluster DNS.

The engine (two replicas, one leading through the Lease `cyclone/cyclone-engine`) and the
server run as pods from the image of `make images`; the tests reach the server through its
Service ClusterIP with the admin token the server put in its Secret, and drive it with the
`cyclone` CLI and its REST API: the diamond (its engine leader killed mid-run), the seed's
steps, deploy/README.md's CI example block (through the install block's port-forward), a
`helm upgrade` mid-run (the engine pods roll while the run goes on), `helm uninstall` (what
must stay, stays) and the install block again (it finds the token, the runs and the tenant).
One plane, one node and one release serve the whole module, in file order.
"""

from __future__ import annotations

import re
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from support.helm_kit import (
    RELEASE,
    InstalledServer,
    ReadmeShell,
    Release,
    readme_ci_block,
    readme_install_block,
    require_helm,
    with_values_file,
)
from support.live_up import free_port
from support.real_node import real_node_plane
from support.realnode_flows import check_ci_example_runs, run_seed_steps
from support.realnode_kit import (
    STAGE_IMAGE,
    PodLedger,
    RunsOf,
    example,
    outputs,
    overall,
    stage_status,
    wait_for,
)

from cyclone import __version__
from cyclone.api import keys
from cyclone.devcluster import ControlPlane

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]

SYSTEM = keys.SYSTEM_NAMESPACE
LEASE_TIMINGS = {"leaseDurationSeconds": 6, "renewDeadlineSeconds": 4, "retryPeriodSeconds": 1}
"""Short engine lease timings: a standby takes over from a killed leader within seconds."""
GC_DELAY = 2
INSTALL_TIMEOUT = 300
CI_EXAMPLE_TIMEOUT = 300
KEPT_TENANT = "kept"
SERVER_UID = 10001
UPGRADED_PENDING_TIMEOUT = 240
DIAMOND_STAGES = ("version", "build-linux", "build-mac", "report")
RELAY = [
    {"apiVersion": keys.API_VERSION, "kind": "Project",
     "metadata": {"name": "installed", "namespace": SYSTEM}, "spec": {}},
    *({"apiVersion": keys.API_VERSION, "kind": "Stage",
       "metadata": {"name": name, "namespace": SYSTEM,
                    "labels": {keys.LABEL_PROJECT: "installed"}},
       "spec": {"pod": {"spec": {"containers": [{
           "name": "main", "image": STAGE_IMAGE,
           "command": ["sh", "-c", f"sleep 4; echo 'leg:{name}' > /cyclone/results/__result__"],
       }]}}}} for name in ("first", "second")),
    {"apiVersion": keys.API_VERSION, "kind": "Workflow",
     "metadata": {"name": "relay", "namespace": SYSTEM,
                  "labels": {keys.LABEL_PROJECT: "installed"}},
     "spec": {"stages": [{"name": "first"}, {"name": "second", "depends": ["first"]}]}},
]
ONE_STAGE = [
    {"apiVersion": keys.API_VERSION, "kind": "Stage",
     "metadata": {"name": "again", "namespace": SYSTEM,
                  "labels": {keys.LABEL_PROJECT: "installed"}},
     "spec": {"pod": {"spec": {"containers": [{
         "name": "main", "image": STAGE_IMAGE,
         "command": ["sh", "-c", "echo 'again:yes' > /cyclone/results/__result__"]}]}}}},
    {"apiVersion": keys.API_VERSION, "kind": "Workflow",
     "metadata": {"name": "again", "namespace": SYSTEM,
                  "labels": {keys.LABEL_PROJECT: "installed"}},
     "spec": {"stages": [{"name": "again"}]}},
]


@dataclass
class Installed:
    plane: ControlPlane
    release: Release
    server: InstalledServer
    ledger: PodLedger
    shells: list[ReadmeShell]
    """The README blocks run so far, the install block first (stopped at the end)."""
    workdir: Path
    host: str
    """The node's bridge address: where its pods reach this machine."""

    @property
    def values(self) -> Path:
        return self.workdir / "values.yaml"

    def run_block(self, block: str, name: str, timeout: float,
                  env: dict[str, str] | None = None) -> ReadmeShell:
        """Run a README block in the release's shell environment (and `env`); fail, with its
        output and the cluster's state, unless it exits 0."""
        shell = ReadmeShell(block, {**self.release.env, **(env or {})},
                            self.workdir / f"{name}.log")
        self.shells.append(shell)
        finished(shell, shell.run(timeout), timeout, name, self.release)
        return shell

    def runs(self, project: str, workflow: str) -> RunsOf:
        return RunsOf(self.server, project, workflow)

    def pods_per_stage(self, run: str) -> Counter:
        return Counter(p.stage for p in self.ledger.pods(run, keys.POD_KIND_WORKLOAD))


def finished(shell: ReadmeShell, code: int, timeout: float, name: str,
             release: Release) -> None:
    if code != 0:
        ended = f"exited {code}" if code > 0 else f"did not finish within {timeout:.0f} s"
        pytest.fail(f"the {name} block of deploy/README.md {ended}:\n{shell.output()}\n"
                    f"{release.diagnostics()}", pytrace=False)


def node_values(workdir: Path) -> dict:
    """What this node and these tests need beyond the chart's defaults: a local-path
    provisioner (no StorageClass here), the images the node imported, short lease timings
    and a short GC delay (the seed's last step sees a run's pods and data go)."""
    return {"localPathProvisioner": {"enabled": True, "path": str(workdir / "volumes")},
            "engine": {**LEASE_TIMINGS, "gcDelaySeconds": GC_DELAY},
            "image": {"pullPolicy": "Never"}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    require_helm()
    block = readme_install_block()
    workdir = tmp_path_factory.mktemp("helm-install")
    values = workdir / "values.yaml"
    values.write_text(yaml.safe_dump(node_values(workdir)))
    with real_node_plane("cyclone-helm", pod_network=True, install_crds=False) as (plane, node):
        release = Release(plane.kubeconfig, workdir, node.changes.socket)
        shells = [ReadmeShell(with_values_file(block, values), release.env,
                              workdir / "install.log")]
        with PodLedger(plane.kubeconfig) as ledger:
            try:
                finished(shells[0], shells[0].run(INSTALL_TIMEOUT), INSTALL_TIMEOUT, "install",
                         release)
                release.wait_ready("engine", 2)
                release.wait_ready("server", 1)
                server = InstalledServer(release.service_url(f"{RELEASE}-server"),
                                         release.admin_token(), workdir / "cli-config.yaml")
                try:
                    wait_for(server.healthy, 60, "the server's /healthcheck at its ClusterIP")
                except AssertionError as exc:
                    pytest.fail(f"{exc}\n{release.diagnostics()}", pytrace=False)
                yield Installed(plane, release, server, ledger, shells, workdir, node.bridge_ip)
            finally:
                for shell in shells:
                    shell.stop()


@pytest.fixture(autouse=True)
def _failures_explained(request: pytest.FixtureRequest, installed: Installed) -> Iterator[None]:
    """A failed test prints helm status, the pods, events and container logs."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(f"\n{installed.release.diagnostics()}")


def test_the_readme_installs_cyclone_and_the_server_makes_the_admin_token(installed: Installed):
    """The server made the admin token Secret (no output shows the token) and, as uid 10001,
    writes to the data volume the local-path provisioner made for it."""
    release, server = installed.release, installed.server
    assert len(release.ready_pods("engine")) == 2
    assert len(release.ready_pods("server")) == 1
    assert len(release.ready_pods("local-path-provisioner")) == 1
    assert server.token, "the admin token Secret is empty"
    shown = (installed.shells[0].output() + release.helm("status", RELEASE)
             + release.helm("get", "manifest", RELEASE) + release.helm("get", "notes", RELEASE))
    if server.token in shown:
        pytest.fail("the admin token appears in helm's or the README's output")
    claim = release.kubectl_json("-n", release.namespace, "get", "pvc", f"{RELEASE}-server-data")
    assert claim["status"]["phase"] == "Bound"
    volume = release.kubectl_json("get", "pv", claim["spec"]["volumeName"])
    data_dir = Path(volume["spec"]["hostPath"]["path"])
    assert data_dir.is_relative_to(installed.workdir / "volumes"), data_dir
    assert (stat.S_IMODE(data_dir.stat().st_mode), stat.S_IMODE(data_dir.parent.stat().st_mode)
            ) == (0o777, 0o700)
    assert SERVER_UID in {entry.stat().st_uid for entry in data_dir.iterdir()}, (
        "the server (non-root) wrote nothing to its data volume")
    assert f"Server Version: {__version__}" in server.cli_ok("version")


def test_the_diamond_finishes_once_under_the_other_engine_after_the_leader_is_killed(
        installed: Installed):
    release, ledger = installed.release, installed.ledger
    leader = wait_for(release.leader, 60, "an engine leader")
    manifest = installed.workdir / "diamond.yaml"
    manifest.write_text(example("diamond.yaml"))
    installed.server.cli_ok("apply", "-f", str(manifest))
    wait_for(lambda: ledger.pods("diamond-run-1", keys.POD_KIND_WORKLOAD), 90,
             "the diamond's first stage pod", interval=0.01)
    release.kill_pod(leader)
    pods_at_kill = len(ledger.pods("diamond-run-1", keys.POD_KIND_WORKLOAD))
    successor = wait_for(lambda: (holder := release.leader()) not in ("", leader) and holder,
                         60, "another engine taking the Lease")
    run = installed.runs("demo", "diamond").finished("diamond-run-1", timeout=180)
    assert pods_at_kill < len(DIAMOND_STAGES), "the diamond ended before its leader was killed"
    assert overall(run)["phase"] == "Succeeded", run["status"]
    version = outputs(run, "version")["version"]
    assert outputs(run, "report")["release"] == f"app-{version}-linux,app-{version}-mac"
    assert installed.pods_per_stage("diamond-run-1") == dict.fromkeys(DIAMOND_STAGES, 1)
    assert successor != leader
    release.wait_ready("engine", 2)


def test_the_seed_steps_run_through_the_installed_server(installed: Installed):
    run_seed_steps(installed.server, installed.plane)


def test_the_readme_ci_example_runs_through_the_installed_server(installed: Installed):
    """deploy/README.md's CI example block, in the install block's shell setup (its CLI
    context, through the port-forward), with the repository served on the node's bridge."""
    port = free_port()
    shell = installed.run_block(readme_ci_block(), "ci-example", CI_EXAMPLE_TIMEOUT, {
        "HOST": installed.host, "STAGE_IMAGE": STAGE_IMAGE, "GIT_PORT": str(port)})
    try:
        refs = httpx.get(f"http://{installed.host}:{port}/demo.git/info/refs", timeout=10)
        head = next(line.split("\t")[0] for line in refs.text.splitlines()
                    if line.endswith("\trefs/heads/main"))
        applied = installed.runs("demo", "ci").finished("ci-run-1")
    finally:
        shell.stop()
    output = shell.output()
    check_ci_example_runs(installed.server, applied, output, head)
    assert "passed:3" in output, output


def test_helm_upgrade_mid_run_keeps_the_run_and_changes_the_engine_config(
        installed: Installed):
    release = installed.release
    manifest = installed.workdir / "relay.yaml"
    manifest.write_text(yaml.safe_dump_all(RELAY))
    installed.server.cli_ok("apply", "-f", str(manifest))
    runs = installed.runs("installed", "relay")
    runs.start("relay-1")
    runs.wait("relay-1", lambda r: stage_status(r, "first").get("phase") == "Running", 90,
              "the first of its two stages running")
    engines_before = set(release.ready_pods("engine"))
    release.helm("upgrade", RELEASE, "deploy/helm/cyclone", "--reuse-values", "--set",
                 f"engine.podPendingTimeoutSeconds={UPGRADED_PENDING_TIMEOUT}", "--wait",
                 "--timeout=4m")
    engine_config = yaml.safe_load(release.config_map(f"{RELEASE}-engine")["engine.yaml"])
    assert engine_config["pod_pending_timeout_seconds"] == UPGRADED_PENDING_TIMEOUT
    run = runs.finished("relay-1", timeout=180)
    assert overall(run)["phase"] == "Succeeded", run["status"]
    assert not engines_before & set(release.wait_ready("engine", 2)), (
        "the changed engine ConfigMap did not roll the engine pods")
    assert {s: outputs(run, s) for s in ("first", "second")} == {
        "first": {"leg": "first"}, "second": {"leg": "second"}}
    assert installed.pods_per_stage("relay-1") == {"first": 1, "second": 1}
    history = release.helm("history", RELEASE)
    assert re.search(r"^2\s.*deployed", history, re.MULTILINE), history


def test_helm_uninstall_removes_the_pods_and_keeps_crds_tenant_data_and_the_token(
        installed: Installed):
    release = installed.release
    with installed.server.api() as admin:
        answer = admin.post("/tenants", json={"metadata": {"name": KEPT_TENANT}})
    assert answer.status_code == 201, answer.text
    release.helm("uninstall", RELEASE, "--wait", "--timeout=3m")

    def cyclone_pods() -> list[str]:
        return [p["metadata"]["name"] for component in ("engine", "server")
                for p in release.pods(component)]

    wait_for(lambda: not cyclone_pods(), 90, "the engine and server pods gone")
    kubectl = release.kubectl
    assert "workflowruns.cyclone.dev" in kubectl("get", "crd", "-o", "name")
    assert kubectl("get", "namespace", SYSTEM, "-o", "name").strip() == f"namespace/{SYSTEM}"
    kept_runs = kubectl("-n", SYSTEM, "get", "workflowruns.cyclone.dev", "-o", "name")
    assert "diamond-run-1" in kept_runs and "relay-1" in kept_runs, kept_runs
    assert kubectl("-n", SYSTEM, "get", "pvc", f"cyclone-pvc-{keys.DEFAULT_TENANT}", "-o",
                   "name").strip()
    namespace = release.namespace
    assert kubectl("-n", namespace, "get", "pvc", f"{RELEASE}-server-data", "-o",
                   "name").strip()
    if release.admin_token() != installed.server.token:
        pytest.fail("the admin token Secret changed across helm uninstall")


def test_the_install_block_again_finds_the_token_the_runs_and_the_tenant(installed: Installed):
    """After `helm uninstall`, deploy/README.md's install block (the same values) brings the
    server back on its kept data: the same admin token, the runs and their logs, the tenant;
    a new run succeeds."""
    release, token = installed.release, installed.server.token
    installed.shells[0].stop()
    installed.run_block(with_values_file(readme_install_block(), installed.values),
                        "install-again", INSTALL_TIMEOUT)
    release.wait_ready("engine", 2)
    release.wait_ready("server", 1)
    if release.admin_token() != token:
        pytest.fail("the reinstalled server made a new admin token")
    written = (Path(release.env["HOME"]) / ".cyclone" / "admin-token").read_text().strip()
    if written != token:
        pytest.fail("the install block wrote another token to ~/.cyclone/admin-token")
    server = InstalledServer(release.service_url(f"{RELEASE}-server"), token,
                             installed.workdir / "cli-config-again.yaml")
    wait_for(server.healthy, 60, "the reinstalled server's /healthcheck")
    assert overall(RunsOf(server, "demo", "diamond").get("diamond-run-1"))[
        "phase"] == "Succeeded"
    assert overall(RunsOf(server, "installed", "relay").get("relay-1"))["phase"] == "Succeeded"
    assert "passed:3" in server.cli_ok("logs", "ci-2", "-s", "ci-test")
    with server.api() as admin:
        tenants = admin.get("/tenants")
    assert tenants.status_code == 200, tenants.text
    assert KEPT_TENANT in {t["metadata"]["name"] for t in tenants.json()["items"]}
    manifest = installed.workdir / "again.yaml"
    manifest.write_text(yaml.safe_dump_all(ONE_STAGE))
    server.cli_ok("apply", "-f", str(manifest))
    server.cli_ok("run", "again", "-p", "installed", "--name", "again-1", "--watch",
                  timeout=180)
    run = RunsOf(server, "installed", "again").get("again-1")
    assert overall(run)["phase"] == "Succeeded", run["status"]
    assert outputs(run, "again") == {"again": "yes"}
