"""The podman/docker runtime: its command lines, and pods run from images with podman."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from support.clusters import eventually

from cyclone.kube import kinds
from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node.runtimes.base import ContainerExited, ContainerLaunch, ContainerRunning
from cyclone.node.runtimes.container_argv import (
    ArgvError,
    container_name,
    create_command,
    progress_of,
    pull_flag,
    qualified_image,
    stop_command,
)
from cyclone.node.runtimes.container_cli import (
    ContainerCliRuntime,
    RuntimeUnavailable,
    host_rlimits,
    image_archives,
    podman_config,
)
from cyclone.node.volumes import Bind
from node.helpers import (
    container_launch,
    pod_manifest,
    running_agent,
    signal_volume,
    statuses,
    terminal,
    until,
    wait_for_pod,
)

TEST_IMAGE = "localhost/cyclone-test/busybox:1"
EXAMPLES = Path(__file__).parents[2] / "examples"


def launch(tmp_path: Path, **fields: object) -> ContainerLaunch:
    values: dict = {"pod_uid": "0f6c", "pod_name": "build-pod", "name": "main",
                    "image": "alpine:3.20", "log_path": tmp_path / "main.log", **fields}
    return container_launch(tmp_path, **values)


def option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == flag]


# --- command lines -------------------------------------------------------------------------

def test_a_command_replaces_the_entrypoint_and_args_follow_the_image(tmp_path: Path) -> None:
    created = create_command("podman", launch(tmp_path, command=["sh", "-c"], args=["echo hi"]),
                             [], pull="missing", env_file="-")
    assert option(created.argv, "--entrypoint") == ["sh"]
    assert created.argv[-3:] == ["docker.io/library/alpine:3.20", "-c", "echo hi"]
    only_args = create_command("podman", launch(tmp_path, args=["x"]), [], pull="missing",
                               env_file="-")
    assert "--entrypoint" not in only_args.argv
    assert only_args.argv[-2:] == ["docker.io/library/alpine:3.20", "x"]


def test_env_values_go_through_the_env_file_never_the_command_line(tmp_path: Path) -> None:
    created = create_command(
        "podman", launch(tmp_path, env={"TOKEN": "s3cret=x", "PATH": "/opt/bin"}), [],
        pull="missing", env_file="/private/env")
    assert not any("s3cret" in word for word in created.argv)
    assert "--env" not in created.argv
    assert option(created.argv, "--env-file") == ["/private/env"]
    assert created.env_file == "HOSTNAME=build-pod\nTOKEN=s3cret=x\nPATH=/opt/bin\n"


def test_an_env_value_the_env_file_cannot_carry_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ArgvError, match=r"^env TOKEN: a value with a line break"):
        create_command("podman", launch(tmp_path, env={"TOKEN": "s3cret\nline"}), [],
                       pull="missing", env_file="/private/env")
    with pytest.raises(ArgvError, match=r"^env: '#X' is not a valid variable name"):
        create_command("podman", launch(tmp_path, env={"#X": "1"}), [], pull="missing",
                       env_file="/private/env")


def test_volumes_workdir_user_and_identity_are_on_the_command_line(tmp_path: Path) -> None:
    binds = [Bind(tmp_path / "ws", "/workspace"), Bind(tmp_path / "cfg", "/etc/cfg", True)]
    created = create_command(
        "docker", launch(tmp_path, binds=binds, working_dir="/workspace", run_as_user=1000,
                         run_as_group=2000), [str(tmp_path / "ws"), str(tmp_path / "cfg")],
        pull="never", env_file="-")
    assert option(created.argv, "--volume") == [f"{tmp_path}/ws:/workspace:rw",
                                                f"{tmp_path}/cfg:/etc/cfg:ro"]
    assert option(created.argv, "--workdir") == ["/workspace"]
    assert option(created.argv, "--user") == ["1000:2000"]
    assert option(created.argv, "--pull") == ["never"]
    assert option(created.argv, "--network") == ["host"]
    assert option(created.argv, "--name") == ["cyclone-0f6c-main"]
    assert "--hostname" not in created.argv
    podman = create_command("podman", launch(tmp_path), [], pull="missing", env_file="-")
    assert option(podman.argv, "--hostname") == ["build-pod"]
    assert "dev.cyclone.pod-uid=0f6c" in option(created.argv, "--label")


def test_a_mount_path_the_cli_cannot_express_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ArgvError, match="mountPath '/a:b'"):
        create_command("podman", launch(tmp_path, binds=[Bind(tmp_path, "/a:b")]),
                       [str(tmp_path)], pull="missing", env_file="-")


def test_images_are_qualified_and_pulled_by_kubernetes_defaults() -> None:
    assert qualified_image("alpine") == "docker.io/library/alpine"
    assert qualified_image("cyclone/toolbox:0.1.0") == "docker.io/cyclone/toolbox:0.1.0"
    assert qualified_image("reg:5000/a/b:1") == "reg:5000/a/b:1"
    assert qualified_image(TEST_IMAGE) == TEST_IMAGE
    assert pull_flag(None, "alpine:3.20") == "missing"
    assert pull_flag(None, "alpine") == "always"
    assert pull_flag(None, "alpine:latest") == "always"
    assert pull_flag("Never", "alpine") == "never"
    with pytest.raises(ArgvError, match="imagePullPolicy"):
        pull_flag("Sometimes", "alpine")


def test_stop_gives_the_grace_period_in_whole_seconds_and_kills_without_one() -> None:
    assert stop_command("c", 2.5) == ["stop", "--time", "3", "c"]
    assert stop_command("c", 0) == ["kill", "--signal", "KILL", "c"]


def test_progress_is_read_from_inspect() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert progress_of("podman", None, now) is None
    created = {"Id": "ab", "State": {"Status": "created", "StartedAt": "0001-01-01T00:00:00Z"}}
    assert progress_of("podman", created, now) is None
    running = progress_of("podman", {"Id": "ab", "State": {
        "Status": "running", "StartedAt": "2026-01-01T10:00:00.123456789Z"}}, now)
    assert running == ContainerRunning(datetime(2026, 1, 1, 10, 0, 0, 123456, UTC),
                                       "podman://ab")
    exited = progress_of("docker", {"Id": "cd", "State": {
        "Status": "exited", "ExitCode": 137, "OOMKilled": True,
        "StartedAt": "2026-01-01T10:00:00Z", "FinishedAt": "2026-01-01T10:00:05Z"}}, now)
    assert isinstance(exited, ContainerExited)
    assert (exited.exit_code, exited.reason, exited.container_id) == (137, "OOMKilled",
                                                                      "docker://cd")
    assert (exited.finished_at - exited.started_at).total_seconds() == 5


def test_podman_config_keeps_state_under_its_root_with_the_hosts_rlimits(tmp_path) -> None:
    containers, storage = podman_config(tmp_path, {"nofile": 1024, "nproc": 99})
    assert 'default_ulimits = ["nofile=1024:1024", "nproc=99:99"]' in containers
    assert 'cgroup_manager = "cgroupfs"' in containers
    assert 'log_driver = "passthrough"' in containers
    assert f'graphroot = "{tmp_path}/storage"' in storage
    limits = host_rlimits()
    assert limits["nproc"] <= int(Path("/proc/sys/kernel/pid_max").read_text())


def test_a_missing_cli_is_named_in_one_line() -> None:
    runtime = ContainerCliRuntime("podman", binary="cyclone-no-such-podman")
    with pytest.raises(RuntimeUnavailable) as raised:
        runtime.check()
    assert str(raised.value).startswith("podman is not installed (cyclone-no-such-podman")


def test_cyclone_up_names_a_docker_that_does_not_answer(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on this machine")
    if subprocess.run(["docker", "version"], capture_output=True).returncode == 0:
        pytest.skip("docker answers on this machine")
    result = subprocess.run(
        [str(Path(os.sys.executable).with_name("cyclone")), "up", "--data-dir",
         str(tmp_path / "data"), "--port", "0", "--runtime", "docker"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "CYCLONE_CONFIG": str(tmp_path / "config.yaml")})
    assert result.returncode == 1
    assert result.stderr.startswith("error: cyclone up: docker does not answer: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


# --- podman --------------------------------------------------------------------------------

def _podman_usable() -> str | None:
    """Why podman cannot be used here (None: it can)."""
    if shutil.which("podman") is None:
        return "podman is not installed (it is optional: `make runtime-deps`)"
    return None


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image archive (busybox) with its index, as `make images` writes them."""
    reason = _podman_usable()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("images")
    rootfs = root / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy("/usr/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep", "echo", "cat", "date", "trap", "ls", "test", "tee"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(root / "rootfs.tar"), "."], check=True)
    scratch = ContainerCliRuntime("podman", state_dir=root / "scratch")
    run = {"env": scratch.env, "check": True, "capture_output": True}
    subprocess.run(["podman", "import", "--change", "CMD [\"sh\"]", str(root / "rootfs.tar"),
                    TEST_IMAGE], **run)
    subprocess.run(["podman", "save", "--format", "oci-archive", "-o",
                    str(root / "busybox.oci.tar"), TEST_IMAGE], **run)
    subprocess.run(["podman", "rmi", "--all", "--force"], **run)
    (root / "index.json").write_text(json.dumps(
        [{"name": "busybox", "reference": TEST_IMAGE, "archive": "busybox.oci.tar"}]))
    return root


def _podman(runtime: ContainerCliRuntime, *args: str) -> str:
    return subprocess.run(["podman", *args], env=runtime.env, check=True,
                          capture_output=True, text=True).stdout


def remove_containers(state_dir: Path) -> None:
    """Remove every container of a runtime's podman (they outlive their agent on purpose)."""
    subprocess.run(["podman", "rm", "--all", "--force", "--time", "0"], capture_output=True,
                   env=ContainerCliRuntime("podman", state_dir=state_dir).env)


@contextlib.contextmanager
def podman_runtime(state_dir: Path, images_dir: Path) -> Iterator[ContainerCliRuntime]:
    runtime = ContainerCliRuntime("podman", state_dir=state_dir, images_dir=images_dir)
    runtime.check()
    try:
        yield runtime
    finally:
        remove_containers(state_dir)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(tmp_path / "cluster.db", poll_interval=0.02) as embedded:
        yield embedded


def test_image_archives_are_read_from_the_index(images_dir: Path) -> None:
    assert image_archives(images_dir) == {TEST_IMAGE: images_dir / "busybox.oci.tar"}
    assert image_archives(images_dir / "nowhere") == {}


async def test_a_pod_runs_from_its_image_with_volumes_results_and_logs(
    cluster: EmbeddedCluster, tmp_path: Path, images_dir: Path,
) -> None:
    spec = {
        "volumes": [{"name": "results", "emptyDir": {}}],
        "initContainers": [{
            "name": "prepare", "image": TEST_IMAGE, "command": ["sh", "-c"],
            "args": ["echo prepared > /cyclone/results/input; echo init says hi"],
            "volumeMounts": [{"name": "results", "mountPath": "/cyclone/results"}],
        }],
        "containers": [{
            "name": "main", "image": TEST_IMAGE, "workingDir": "/cyclone/results",
            "command": ["sh", "-c", 'cat input; echo "$GREETING" >&2;'
                        ' echo "version:$(cat input)" > /dev/termination-log; exit 3'],
            "env": [{"name": "GREETING", "value": "from env"}],
            "volumeMounts": [{"name": "results", "mountPath": "/cyclone/results"}],
        }],
    }
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        async with running_agent(cluster, tmp_path / "node", runtime):
            await cluster.create(pod_manifest("images", spec))
            pod = await wait_for_pod(cluster, "images", terminal, within=60)
            logs = tmp_path / "node" / "logs" / "default" / "images"
            assert (logs / "prepare.log").read_text() == "init says hi\n"
            assert (logs / "main.log").read_text() == "prepared\nfrom env\n"
    main = statuses(pod)["main"]["state"]["terminated"]
    assert pod["status"]["phase"] == "Failed"
    assert (main["exitCode"], main["message"]) == (3, "version:prepared\n")
    assert main["containerID"].startswith("podman://")
    assert statuses(pod, "initContainerStatuses")["prepare"]["state"]["terminated"][
        "exitCode"] == 0


async def test_deleting_a_running_pod_gives_its_container_sigterm_and_the_grace_period(
    cluster: EmbeddedCluster, tmp_path: Path, images_dir: Path,
) -> None:
    shared, volume, mount = signal_volume(tmp_path)
    spec = {"terminationGracePeriodSeconds": 20, "volumes": [volume], "containers": [{
        "name": "main", "image": TEST_IMAGE, "volumeMounts": [mount],
        "command": ["sh", "-c", "trap 'sleep 1; echo term > /signal/got; exit 0' TERM;"
                    " echo up > /signal/up; while true; do sleep 0.1; done"],
    }]}
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        async with running_agent(cluster, tmp_path / "node", runtime):
            await cluster.create(pod_manifest("stopped", spec))
            await until(lambda: (shared / "up").exists(), within=60)
            await cluster.delete(kinds.POD, "stopped", "default")
            await until(lambda: (shared / "got").exists(), within=30)
            await until(lambda: not _podman(runtime, "ps", "--all", "--quiet"), within=30)
    assert (shared / "got").read_text() == "term\n"


async def test_a_restarted_agent_reattaches_to_its_container_without_running_it_twice(
    cluster: EmbeddedCluster, tmp_path: Path, images_dir: Path,
) -> None:
    shared, volume, mount = signal_volume(tmp_path)
    spec = {"volumes": [volume], "containers": [{
        "name": "main", "image": TEST_IMAGE, "volumeMounts": [mount],
        "command": ["sh", "-c", "echo started >> /signal/starts;"
                    " while ! test -e /signal/go; do sleep 0.1; done;"
                    " echo went > /dev/termination-log"],
    }]}
    with podman_runtime(tmp_path / "podman", images_dir) as runtime:
        async with running_agent(cluster, tmp_path / "node", runtime):
            await cluster.create(pod_manifest("reattached", spec))
            await until(lambda: (shared / "starts").exists(), within=60)
            await wait_for_pod(cluster, "reattached", lambda pod: "running" in (
                statuses(pod).get("main", {}).get("state") or {}), within=60)
        restarted = ContainerCliRuntime("podman", state_dir=tmp_path / "podman",
                                        images_dir=images_dir)
        async with running_agent(cluster, tmp_path / "node", restarted):
            (shared / "go").touch()
            pod = await wait_for_pod(cluster, "reattached", terminal, within=60)
            names = _podman(runtime, "ps", "--all", "--format", "{{.Names}}").split()
    assert pod["status"]["phase"] == "Succeeded"
    assert (shared / "starts").read_text() == "started\n"
    assert statuses(pod)["main"]["state"]["terminated"]["message"] == "went\n"
    uid = pod["metadata"]["uid"]
    assert names == [f"cyclone-{uid}-main"]
    assert container_name(launch(tmp_path, pod_uid=uid)) == names[0]


def diamond_documents() -> list[dict]:
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "diamond.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Stage":
            for container in doc["spec"]["pod"]["spec"]["containers"]:
                container["image"] = TEST_IMAGE
                container["command"][-1] = f"echo stage {doc['metadata']['name']}; " + \
                    container["command"][-1]
    return docs


async def stop_a_running_stage(http, cluster: EmbeddedCluster, data_dir: Path) -> str:
    """Start a run whose stage waits, stop it through the API; what the stage wrote.

    The stage's output is read from the node's log file: it lingers after SIGTERM, and the
    file is there until its container has ended."""
    from cyclone.api import keys

    meta = {"namespace": keys.SYSTEM_NAMESPACE, "labels": {"project.cyclone.dev/name": "demo"}}
    script = ("trap 'echo got TERM; sleep 5; exit 0' TERM; echo waiting;"
              " while true; do sleep 0.1; done")
    await cluster.create({"apiVersion": "cyclone.dev/v1alpha1", "kind": "Stage",
                          "metadata": {"name": "wait", **meta}, "spec": {"pod": {"spec": {
                              "containers": [{"image": TEST_IMAGE,
                                              "command": ["sh", "-c", script]}]}}}})
    await cluster.create({"apiVersion": "cyclone.dev/v1alpha1", "kind": "Workflow",
                          "metadata": {"name": "waits", **meta},
                          "spec": {"stages": [{"name": "wait"}]}})
    await cluster.create({"apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
                          "metadata": {"name": "waits-1", **meta, "labels": {
                              **meta["labels"], "workflow.cyclone.dev/name": "waits"}},
                          "spec": {"workflowRef": {"name": "waits"}}})
    runtime = ContainerCliRuntime("podman", state_dir=data_dir / "podman")
    logs = data_dir / "node" / "logs" / keys.SYSTEM_NAMESPACE

    def written(line: str) -> str:
        for path in logs.glob("*/*.log"):
            with contextlib.suppress(OSError):
                if line in (text := path.read_text()):
                    return text
        return ""

    async def ended() -> bool:
        return not await asyncio.to_thread(
            _podman, runtime, "ps", "--quiet", "--filter", "label=dev.cyclone.pod")

    await eventually(lambda: written("waiting"), timeout=60, interval=0.1)
    run_path = "/projects/demo/workflows/waits/workflowruns/waits-1"
    assert (await http.put(f"{run_path}/stop")).status_code == 200
    text = await eventually(lambda: written("got TERM"), timeout=30, interval=0.1)
    await eventually(ended, timeout=60, interval=0.2)
    return text


async def test_cyclone_up_with_podman_runs_the_diamond_and_stops_a_running_stage(
    tmp_path: Path, images_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from support.up import cyclone_up

    from cyclone.api import keys

    data_dir = tmp_path / "up"
    monkeypatch.setenv("CYCLONE_IMAGES_DIR", str(images_dir))
    try:
        async with cyclone_up(data_dir, monkeypatch, runtime="podman") as http, \
                EmbeddedCluster(data_dir / "cluster.db") as cluster:
            docs = diamond_documents()
            for doc in docs:
                await cluster.create(doc)
            run: dict = {}
            async with asyncio.timeout(90):
                while (run.get("status") or {}).get("overall", {}).get("phase") not in (
                        "Succeeded", "Failed"):
                    await asyncio.sleep(0.2)
                    run = await cluster.get(kinds.WORKFLOW_RUN, "diamond-run-1",
                                            keys.SYSTEM_NAMESPACE)
            logs = await http.get(
                "/projects/demo/workflows/diamond/workflowruns/diamond-run-1/logs",
                params={"stage": "report"})
            stopped_log = await stop_a_running_stage(http, cluster, data_dir)
    finally:
        await asyncio.to_thread(remove_containers, data_dir / "podman")
    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
    stages = run["status"]["stages"]
    version = {o["key"]: o["value"] for o in stages["version"]["outputs"]}["version"]
    report = {o["key"]: o["value"] for o in stages["report"]["outputs"]}
    assert report["release"] == f"app-{version}-linux,app-{version}-mac"
    assert logs.status_code == 200, logs.text
    assert "stage report\n" in logs.text
    assert stopped_log == "waiting\ngot TERM\n"


DIST_IMAGES = Path(__file__).parents[2] / "dist" / "images"


async def test_cyclone_up_with_podman_checks_out_git_and_passes_artifacts_with_cyclones_images(
    tmp_path: Path, images_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engine.gates import serve_git_repository
    from engine.test_examples import make_demo_repo
    from support.up import cyclone_up

    from cyclone import __version__
    from cyclone.api import keys

    if not (DIST_IMAGES / "index.json").exists():
        pytest.skip("no dist/images: `make images` builds Cyclone's images")
    head = make_demo_repo(tmp_path / "repo")
    url = serve_git_repository(tmp_path / "repo", tmp_path / "served")
    docs = [d for d in yaml.safe_load_all((EXAMPLES / "ci-pipeline.yaml").read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Stage":
            for container in doc["spec"]["pod"]["spec"]["containers"]:
                container["image"] = f"cyclone/toolbox:{__version__}"
        if doc["kind"] == "WorkflowRun":
            doc["spec"]["globalVariables"] = [{"name": "REPO_URL", "value": url}]
    data_dir = tmp_path / "up"
    monkeypatch.setenv("CYCLONE_IMAGES_DIR", str(DIST_IMAGES))
    try:
        async with cyclone_up(data_dir, monkeypatch, runtime="podman"), \
                EmbeddedCluster(data_dir / "cluster.db") as cluster:
            for doc in docs:
                await cluster.create(doc)
            name = next(d["metadata"]["name"] for d in docs if d["kind"] == "WorkflowRun")
            run: dict = {}
            async with asyncio.timeout(120):
                while (run.get("status") or {}).get("overall", {}).get("phase") not in (
                        "Succeeded", "Failed"):
                    await asyncio.sleep(0.2)
                    run = await cluster.get(kinds.WORKFLOW_RUN, name, keys.SYSTEM_NAMESPACE)
    finally:
        await asyncio.to_thread(remove_containers, data_dir / "podman")
    assert run["status"]["overall"]["phase"] == "Succeeded", run["status"]
    stages = run["status"]["stages"]
    tested = {o["key"]: o["value"] for o in stages["ci-test"]["outputs"]}
    assert (tested["passed"], tested["failed"]) == ("3", "0")
    assert {o["key"]: o["value"] for o in stages["ci-build"]["outputs"]}["LastCommitID"] == head
    assert {o["key"]: o["value"] for o in stages["ci-package"]["outputs"]}["package"] == \
        "greet.tgz"
