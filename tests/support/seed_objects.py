"""The objects of the seed's step 4 ("Resources, stages, a workflow") as REST posts, shared by
the seed flow on `cyclone up` and the one through an installed server."""

from __future__ import annotations

BUILD_SCRIPT = ("echo 'artifact:demo.tar' > /cyclone/results/__result__; echo building; "
                "echo binary > /workspace/package/app.bin; sleep 2; echo built")
TEST_SCRIPT = "echo testing ${stages.build.outputs.artifact}; echo passed"


def _stage(name: str, script: str, image: str, resources: dict, outputs: dict | None) -> dict:
    pod: dict = {"spec": {"containers": [{
        "image": image, "command": ["sh", "-c", script], "resources": resources}]}}
    if outputs:
        pod["outputs"] = outputs
    return {"metadata": {"name": name}, "spec": {"pod": pod}}


def seed_posts(image: str, resources: dict) -> list[tuple[str, dict]]:
    """(path, body) in the order to post them: project `demo`, its resources `source` (Git)
    and `package` (Http), stages `build` (outputs the package) and `test`, workflow `ci`."""
    package = {"resources": [{"name": "package", "path": "/workspace/package"}]}
    return [
        ("/projects", {"metadata": {"name": "demo"}}),
        ("/projects/demo/resources", {"metadata": {"name": "source"}, "spec": {
            "type": "Git", "parameters": [
                {"name": "SCM_URL", "value": "https://git.example/demo.git"},
                {"name": "SCM_REVISION", "value": "main"}]}}),
        ("/projects/demo/resources", {"metadata": {"name": "package"}, "spec": {"type": "Http"}}),
        ("/projects/demo/stages", _stage("build", BUILD_SCRIPT, image, resources, package)),
        ("/projects/demo/stages", _stage("test", TEST_SCRIPT, image, resources, None)),
        ("/projects/demo/workflows", {"metadata": {"name": "ci"}, "spec": {"stages": [
            {"name": "build"}, {"name": "test", "depends": ["build"]}]}}),
    ]
