"""The shell snippets the pod builder puts into stage pods, run for real with ``sh``."""

import subprocess

import pytest

from cyclone.engine.core.podbuilder import build_stage_pod
from cyclone.engine.core.results import EXIT_CODE_FILE, RESULTS_DIR

from .fixtures import context, stage
from .test_podbuilder import image_resource


def pod_with_push(command):
    s = stage(
        "build",
        pod={
            "outputs": {"resources": [{"name": "img", "path": "/out"}]},
            "spec": {"containers": [{"image": "a", "command": command, "args": ["x y"]}]},
        },
    )
    return build_stage_pod(context(stage=s, resources={"img": image_resource()}))


def run_sh(argv, results_dir, workdir):
    argv = [arg.replace(RESULTS_DIR, str(results_dir)) for arg in argv]
    return subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=10)


@pytest.mark.parametrize("code", [0, 3])
def test_wrapped_workload_keeps_its_exit_code_and_records_it(tmp_path, code):
    workload = pod_with_push(["sh", "-c", f'echo "got:$0 $1"; exit {code}'])["spec"][
        "containers"
    ][0]
    result = run_sh(workload["command"] + workload["args"], tmp_path, tmp_path)
    assert result.returncode == code
    assert result.stdout.strip() == "got:x y"
    assert (tmp_path / EXIT_CODE_FILE.rsplit("/", 1)[1]).read_text().strip() == str(code)


@pytest.mark.parametrize(("code", "pushed"), [("0", True), ("1", False)])
def test_push_container_waits_for_success(tmp_path, code, pushed):
    push = pod_with_push(["true"])["spec"]["containers"][1]
    (tmp_path / "__exit__").write_text(code + "\n")
    script = push["command"][2].replace("/entrypoint.sh push", "echo PUSH-DONE")
    result = run_sh(["sh", "-c", script], tmp_path, tmp_path)
    assert result.returncode == 0
    assert ("PUSH-DONE" in result.stdout) is pushed
