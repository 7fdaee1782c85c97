"""Java in a host-runtime container: the JVM's container support reads the cgroup view the
sandbox gives it (its own cgroup namespace and hierarchies) and works, without options."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cyclone.kube.embedded import EmbeddedCluster
from cyclone.node import HostRuntime
from node.helpers import pod_manifest, running_agent, terminal, wait_for_pod

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/bwrap") or os.geteuid() != 0
    or not all(shutil.which(tool) for tool in ("java", "javac", "mvn")),
    reason="needs bubblewrap, root, a JDK and maven",
)

PROGRAM = """public class Hello {
  public static void main(String[] args) {
    Runtime r = Runtime.getRuntime();
    System.out.println("hello " + args[0] + " cpus=" + r.availableProcessors()
        + " max=" + (r.maxMemory() > 0));
  }
}
"""

SCRIPT = f"""set -e
mkdir -p /workspace/src && cd /workspace/src
cat > Hello.java <<'JAVA'
{PROGRAM}JAVA
echo "== settings"; java -XshowSettings:system -version 2>&1
echo "== javac"; javac -d /workspace/classes Hello.java
echo "== run"; java -cp /workspace/classes Hello sandbox
echo "== mvn"; mvn -v
echo "== cgroup roots"; awk '/ - cgroup2? /{{print $4}}' /proc/self/mountinfo | sort -u
"""


def section(log: str, name: str) -> str:
    return log.split(f"== {name}\n", 1)[1].split("\n== ", 1)[0]


async def test_a_java_program_compiles_and_runs_with_the_jvms_container_support(
    cluster: EmbeddedCluster, tmp_path: Path
) -> None:
    node_dir = tmp_path / "node"
    spec = {"volumes": [{"name": "work", "emptyDir": {}}],
            "containers": [{"name": "c", "image": "openjdk", "command": ["sh", "-c", SCRIPT],
                            "volumeMounts": [{"name": "work", "mountPath": "/workspace"}]}]}
    async with running_agent(cluster, node_dir, HostRuntime()):
        await cluster.create(pod_manifest("java", spec))
        pod = await wait_for_pod(cluster, "java", terminal, within=90)

    log = (node_dir / "logs" / "default" / "java" / "c.log").read_text()
    assert pod["status"]["phase"] == "Succeeded", log
    assert "Exception" not in log, log
    settings = section(log, "settings")
    assert "Operating System Metrics:" in settings and "Provider: cgroupv" in settings, log
    assert section(log, "run").strip() == "hello sandbox cpus=" + str(
        len(os.sched_getaffinity(0))) + " max=true", log
    assert "Apache Maven" in section(log, "mvn"), log
    assert section(log, "cgroup roots").split() == ["/"], log
