"""What a container of the host runtime can reach: every attempt on what is not its own fails.

The data dirs live outside /tmp here (every container has its own /tmp, which would hide them
anyway), so that what hides them is the sandbox's list of hidden paths.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import HostRuntime
from node.helpers import pod_manifest, running_agent, statuses, terminal, wait_for_pod

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/bwrap") or os.geteuid() != 0,
    reason="needs bubblewrap and root (the sandbox drops to an unprivileged uid)",
)


@pytest.fixture
def visible_dir() -> Iterator[Path]:
    """A directory outside /tmp, as `cyclone up`'s data dir usually is."""
    path = Path(tempfile.mkdtemp(prefix=".cyclone-sandbox-test-", dir=os.getcwd()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def attempt(name: str, command: str) -> str:
    """A shell line printing `name refused` when `command` fails, `name ALLOWED` otherwise."""
    return f"if ( {command} ) >/dev/null 2>&1; then echo '{name} ALLOWED'; " \
           f"else echo '{name} refused'; fi"


def outcomes(log: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in log.splitlines() if line.endswith(
        (" refused", " ALLOWED")))


async def run_pod(cluster: EmbeddedCluster, name: str, script: str, **extra: object) -> dict:
    spec = {
        "volumes": [{"name": "work", "emptyDir": {}},
                    {"name": "mine", "persistentVolumeClaim": {"claimName": "mine"}}],
        "containers": [{
            "name": "c", "image": "busybox", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "work", "mountPath": "/cyclone/results"},
                             {"name": "mine", "mountPath": "/data"}],
            **extra,
        }],
    }
    await cluster.create(pod_manifest(name, spec))
    return await wait_for_pod(cluster, name, terminal, within=60)


def log_of(data_dir: Path, name: str) -> str:
    return (data_dir / "logs" / "default" / name / "c.log").read_text()


async def test_a_container_reaches_nothing_but_its_own_volumes(
    cluster: EmbeddedCluster, visible_dir: Path
) -> None:
    up_dir = visible_dir / "up"
    node_dir = up_dir / "node"
    other_pvc = node_dir / "volumes" / "pvc" / "cyclone-other" / "cyclone-pvc-other"
    other_pvc.mkdir(parents=True)
    (other_pvc / "secret.txt").write_text("other tenant")
    (up_dir / "cluster.db").write_text("every secret")
    (up_dir / "admin-token").write_text("admin")
    (up_dir / "artifacts").mkdir()
    (node_dir / "logs" / "cyclone-other").mkdir(parents=True)
    cli_config = visible_dir / "cli" / "config.yaml"
    cli_config.parent.mkdir()
    cli_config.write_text("token: admin\n")
    cwd = os.getcwd()
    attempts = [
        attempt("shadow", "cat /etc/shadow"),
        attempt("cluster-db", f"cat {up_dir}/cluster.db"),
        attempt("admin-token", f"cat {up_dir}/admin-token"),
        attempt("cli-config", f"grep admin {cli_config}"),
        attempt("other-pvc", f"cat {other_pvc}/secret.txt"),
        attempt("list-pvcs", f"ls {node_dir}/volumes/pvc | grep cyclone-other"),
        attempt("list-logs", f"ls {node_dir}/logs | grep cyclone-other"),
        attempt("list-artifacts", f"ls -d {up_dir}/artifacts"),
        attempt("write-root", "touch /escape"),
        attempt("write-usr", "touch /usr/escape"),
        attempt("write-etc", "touch /etc/escape"),
        attempt("write-data-dir", f"touch {up_dir}/escape"),
        attempt("write-cwd", f"touch {cwd}/escape"),
        attempt("chown", "touch /data/f && chown 0:0 /data/f"),
        attempt("mount", "mkdir -p /tmp/m && mount -t tmpfs none /tmp/m"),
        attempt("raw-socket", "python3 -c 'import socket; socket.socket(socket.AF_INET,"
                " socket.SOCK_RAW, 1)'"),
        attempt("host-process", f"test -e /proc/{os.getpid()}/cmdline"),
        attempt("new-userns", "unshare -U true"),
        attempt("cgroup-write", "for f in /sys/fs/cgroup/*/cgroup.procs; do echo 1 > $f"
                " && exit 0; done; exit 1"),
        attempt("cgroup-mkdir", "mkdir /sys/fs/cgroup/memory/escape"),
        attempt("cgroup-host-pids", f"cat /sys/fs/cgroup/*/cgroup.procs | grep -qx {os.getpid()}"),
        "echo build > /data/built; echo 'result:ok' > /cyclone/results/__result__; id -u",
    ]
    runtime = HostRuntime(hidden_paths=[up_dir, cli_config])
    async with running_agent(cluster, node_dir, runtime):
        pod = await run_pod(cluster, "attacker", "\n".join(attempts),
                            terminationMessagePath="/cyclone/results/__result__")

    log = log_of(node_dir, "attacker")
    assert pod["status"]["phase"] == "Succeeded", log
    results = outcomes(log)
    assert len(results) == len(attempts) - 1, log
    assert {name for name, outcome in results.items() if outcome != "refused"} == set(), log
    assert log.rstrip().endswith("65534")
    assert statuses(pod)["c"]["state"]["terminated"].get("message") == "result:ok\n", log
    built = node_dir / "volumes" / "pvc" / "default" / "mine" / "built"
    assert built.read_text() == "build\n"
    assert (built.stat().st_uid, built.stat().st_gid) == (65534, 65534)
    for path in ("escape", "usr/escape", "etc/escape"):
        assert not (Path("/") / path).exists()
    assert not (up_dir / "escape").exists() and not (Path(cwd) / "escape").exists()


async def test_root_in_the_container_is_root_of_its_user_namespace_only(
    cluster: EmbeddedCluster, visible_dir: Path
) -> None:
    node_dir = visible_dir / "node"
    script = "\n".join([
        attempt("shadow", "cat /etc/shadow"),
        attempt("write-etc", "touch /etc/escape"),
        attempt("chown-host-file", "chown 0 /etc/hostname"),
        "touch /data/by-root; id -u",
    ])
    async with running_agent(cluster, node_dir, HostRuntime()):
        pod = await run_pod(cluster, "root", script, securityContext={"runAsUser": 0})

    log = log_of(node_dir, "root")
    assert pod["status"]["phase"] == "Succeeded", log
    assert set(outcomes(log).values()) == {"refused"}, log
    assert log.rstrip().endswith("\n0")
    made = node_dir / "volumes" / "pvc" / "default" / "mine" / "by-root"
    assert made.stat().st_uid == 65534


async def test_run_as_user_of_the_pod_applies_and_run_as_non_root_refuses_uid_0(
    cluster: EmbeddedCluster, visible_dir: Path
) -> None:
    node_dir = visible_dir / "node"
    async with running_agent(cluster, node_dir, HostRuntime()):
        spec = {"securityContext": {"runAsUser": 1000, "runAsGroup": 1001},
                "containers": [{"name": "c", "image": "busybox",
                                "command": ["sh", "-c", "id -u; id -g"]}]}
        await cluster.create(pod_manifest("ids", spec))
        pod = await wait_for_pod(cluster, "ids", terminal, within=60)
        assert pod["status"]["phase"] == "Succeeded"
        assert log_of(node_dir, "ids") == "1000\n1001\n"

        refused = {"containers": [{"name": "c", "image": "busybox", "command": ["true"],
                                   "securityContext": {"runAsUser": 0, "runAsNonRoot": True}}]}
        await cluster.create(pod_manifest("non-root", refused))
        pod = await wait_for_pod(
            cluster, "non-root",
            lambda p: (statuses(p).get("c", {}).get("state", {}).get("waiting") or {}).get(
                "reason") == "CreateContainerConfigError",
        )
    assert "runAsNonRoot" in statuses(pod)["c"]["state"]["waiting"]["message"]
