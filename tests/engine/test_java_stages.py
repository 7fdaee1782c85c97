"""A Java stage on the host runtime, as a user writes one from the built-in maven-build
template: maven, the JVM's container support, javac and java all work in the sandbox, with
no JVM option set, on the embedded cluster and on a real kube-apiserver."""

from __future__ import annotations

import os
import shutil

import pytest

from .harness import BACKENDS, outputs, workflow, workflow_run
from .test_builtin_templates import container_logs, from_template

COMMANDS = """mvn -B -v
java -XshowSettings:system -version 2>&1 | grep -q 'Provider: cgroupv'
mkdir -p /tmp/hello && cd /tmp/hello
cat > Hello.java <<'JAVA'
public class Hello {
  public static void main(String[] args) {
    System.out.println("hello " + args[0] + " on " + Runtime.getRuntime().availableProcessors());
  }
}
JAVA
javac Hello.java
echo "greeting:$(java -cp . Hello maven)" >> /cyclone/results/__result__
"""


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("java", "javac", "mvn")),
                    reason="needs a JDK and maven (make test installs them)")
@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_a_stage_from_the_maven_template_compiles_and_runs_java(env):
    stage = from_template("maven-build", "java", None, cmd=COMMANDS)
    await env.apply(stage, workflow("java", [{"name": "java"}]), workflow_run("java-1", "java"))
    run = await env.wait_phase("java-1", "Succeeded", "Failed", within=60)

    logs = container_logs(env.data_dir)
    assert run["status"]["overall"]["phase"] == "Succeeded", logs
    assert "Apache Maven" in logs and "Exception" not in logs, logs
    assert outputs(run, "java")["greeting"] == (
        f"hello maven on {len(os.sched_getaffinity(0))}")
