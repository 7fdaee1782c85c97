"""The built-in CI/CD templates as a tenant finds them on `/templates`: labelled, described,
each argument explained, and a script a POSIX shell parses."""

from __future__ import annotations

import subprocess

import pytest

from cyclone.api import keys
from cyclone.server.builtins import builtin_stage_templates

CICD = ("gradle-build", "gradle-test", "golang-test-report", "image-build", "sonarqube-scan",
        "kubectl-deploy")


async def test_the_cicd_templates_are_served_labelled_with_every_argument_described(devops):
    listed = {t["metadata"]["name"]: t for t in (await devops.get("/templates")).json()["items"]}
    for name in CICD:
        meta = listed[name]["metadata"]
        assert meta["namespace"] == "cyclone-system"
        assert meta["labels"][keys.LABEL_BUILTIN] == "true"
        assert meta["labels"][keys.LABEL_STAGE_TEMPLATE] == "true"
        assert meta["labels"][keys.LABEL_SCENE]
        assert meta["annotations"][keys.ANNOTATION_ALIAS]
        assert meta["annotations"][keys.ANNOTATION_DESCRIPTION]
        arguments = listed[name]["spec"]["pod"]["inputs"]["arguments"]
        assert all(a.get("description") for a in arguments), name
        assert {"image", "workDir"} <= {a["name"] for a in arguments}
    assert (await devops.delete("/templates/kubectl-deploy")).status_code == 403


@pytest.mark.parametrize("name", CICD)
def test_a_cicd_templates_script_parses(name):
    template = next(t for t in builtin_stage_templates() if t["metadata"]["name"] == name)
    command = template["spec"]["pod"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    parsed = subprocess.run(["sh", "-n", "-c", command[2]], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
