"""Which of the project's integrations a resource type's ``spec.bind`` reads, and what it
gives the resource's pull container."""

from __future__ import annotations

import base64
import json

import pytest

from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.engine.core.bindings import (
    ANNOTATION_INTEGRATION,
    bind_resource,
    bind_resources,
    bound_credentials,
    credentials_secret,
    credentials_secret_name,
    integration_spec,
    move_credentials,
)
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.podbuilder import build_stage_pod

from .fixtures import META_NS, context, git_resource
from .podchecks import container, env_of
from .test_podbuilder import git_type_template


def scm(server: str, token: str) -> dict:
    return {"type": "SCM", "scm": {"type": "GitLab", "server": server, "token": token}}


INTEGRATIONS = {
    "gitlab": scm("https://gitlab.local", "glpat-first"),
    "gitea": scm("https://gitea.local", "gitea-second"),
    "registry": {"type": "DockerRegistry", "dockerRegistry": {"server": "r.local"}},
}


def project(*items: tuple[str, str]) -> Project:
    return Project.from_object({
        "apiVersion": "cyclone.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": "shop", "namespace": META_NS},
        "spec": {"integrations": [{"type": t, "name": n} for t, n in items]}})


def bare_git(integration: str | None = None) -> Resource:
    resource = git_resource()
    resource.spec.parameters = [p for p in resource.spec.parameters if p.name == "SCM_REPO"]
    if integration:
        resource.metadata.annotations = {ANNOTATION_INTEGRATION: integration}
    return resource


def test_the_projects_integration_of_the_bound_type_is_used():
    binding = bind_resource(bare_git(), git_type_template(),
                            project(("DockerRegistry", "registry"), ("SCM", "gitlab")),
                            INTEGRATIONS)
    assert (binding.integration, binding.note) == ("gitlab", None)
    assert binding.spec == INTEGRATIONS["gitlab"]


def test_of_several_the_first_is_used_and_the_stage_is_told():
    binding = bind_resource(bare_git(), git_type_template(),
                            project(("SCM", "gitlab"), ("SCM", "gitea")), INTEGRATIONS)
    assert binding.integration == "gitlab"
    assert "2 SCM integrations (gitlab, gitea)" in binding.note
    assert ANNOTATION_INTEGRATION in binding.note


def test_a_resource_names_which_of_several_it_uses():
    binding = bind_resource(bare_git("gitea"), git_type_template(),
                            project(("SCM", "gitlab"), ("SCM", "gitea")), INTEGRATIONS)
    assert (binding.integration, binding.note) == ("gitea", None)


def test_a_named_integration_the_project_does_not_list_binds_nothing_and_says_so():
    binding = bind_resource(bare_git("gitea"), git_type_template(),
                            project(("SCM", "gitlab")), INTEGRATIONS)
    assert binding.spec is None
    assert 'integration "gitea" is not a SCM integration of the project' in binding.note


def test_nothing_is_bound_without_a_project_integration_of_the_type():
    assert bind_resource(bare_git(), git_type_template(), None, INTEGRATIONS).spec is None
    assert bind_resource(bare_git(), git_type_template(),
                         project(("DockerRegistry", "registry")), INTEGRATIONS).spec is None


def test_a_listed_name_that_is_not_a_readable_integration_of_that_type_binds_nothing():
    """A name of another tenant's integration, or of a Secret that is not one, is not in
    what the engine read from the run's namespace; a listed type that the stored spec
    contradicts does not bind either."""
    assert bind_resource(bare_git(), git_type_template(),
                         project(("SCM", "elsewhere")), INTEGRATIONS).spec is None
    assert bind_resource(bare_git(), git_type_template(),
                         project(("SCM", "registry")), INTEGRATIONS).spec is None


def test_only_a_labelled_secret_with_a_json_spec_is_an_integration():
    data = {"integration": base64.b64encode(json.dumps(scm("s", "t")).encode()).decode()}
    labelled = {"metadata": {"labels": {"integration.cyclone.dev/type": "SCM"}}, "data": data}
    assert integration_spec(labelled) == scm("s", "t")
    assert integration_spec({"metadata": {}, "data": data}) is None
    assert integration_spec({**labelled, "data": {"integration": "bm90IGpzb24="}}) is None
    assert integration_spec(None) is None


def test_the_bound_integration_fills_the_pull_containers_parameters():
    resource = bare_git()
    types = {"Git": git_type_template()}
    bound, notes = bind_resources([resource], types, project(("SCM", "gitea")), INTEGRATIONS)
    assert notes == []
    pod = build_stage_pod(context(resources={"src": resource}, resource_types=types,
                                  resource_integrations=bound))
    env = env_of(container(pod, "csc-pull-src"))
    assert (env["SCM_URL"], env["SCM_AUTH"]) == ("https://gitea.local", "gitea-second")


def test_bound_credentials_leave_the_pod_spec_for_its_own_secret():
    resource = bare_git()
    types = {"Git": git_type_template()}
    bound, _ = bind_resources([resource], types, project(("SCM", "gitea")), INTEGRATIONS)
    pod = build_stage_pod(context(resources={"src": resource}, resource_types=types,
                                  resource_integrations=bound))
    data = move_credentials(pod, bound_credentials(bound))
    env = {e["name"]: e for e in container(pod, "csc-pull-src")["env"]}
    name = credentials_secret_name(pod["metadata"]["name"])
    assert data == {"csc-pull-src.SCM_AUTH": "gitea-second"}
    assert env["SCM_AUTH"] == {"name": "SCM_AUTH", "valueFrom": {"secretKeyRef": {
        "name": name, "key": "csc-pull-src.SCM_AUTH"}}}
    assert env["SCM_URL"]["value"] == "https://gitea.local"
    assert "gitea-second" not in str(pod)
    secret = credentials_secret(pod, data)
    assert secret["metadata"]["name"] == name
    assert secret["metadata"]["namespace"] == pod["metadata"]["namespace"]
    assert base64.b64decode(secret["data"]["csc-pull-src.SCM_AUTH"]) == b"gitea-second"


def test_a_workload_printing_a_credential_keeps_its_own_env():
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "main", "env": [{"name": "T", "value": "glpat-first"}]}]}}
    assert move_credentials(pod, {"glpat-first"}) == {}
    assert pod["spec"]["containers"][0]["env"] == [{"name": "T", "value": "glpat-first"}]


def test_a_required_parameter_left_empty_after_binding_fails_the_pod_naming_it():
    resource = bare_git()
    template = git_type_template()
    for parameter in template.spec.parameters:
        parameter.required = parameter.name == "SCM_URL"
    with pytest.raises(StagePodError, match=(
            r'resource "src": parameter SCM_URL is required and has no value \(set it on the '
            r"Resource, in the run's spec.resources or bind it from a SCM integration")):
        build_stage_pod(context(resources={"src": resource}, resource_types={"Git": template}))
    bound, _ = bind_resources([resource], {"Git": template}, project(("SCM", "gitlab")),
                              INTEGRATIONS)
    build_stage_pod(context(resources={"src": resource}, resource_types={"Git": template},
                            resource_integrations=bound))
