"""Cyclone's own pods name the images `make images` builds, tagged with the package version,
and use an image already on the node (`IfNotPresent`); the host runtime still stands in for
a resolver image under any tag or registry."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from engine_core.fixtures import context, stage

from cyclone import __version__
from cyclone.api.resource import Resource
from cyclone.cli.components import GC_IMAGE
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.acceleration import build_clean_cache_pod
from cyclone.engine.core.gcpod import build_gc_pod
from cyclone.engine.core.images import (
    DEFAULT_RESOLVER_IMAGES,
    IMAGE_TAG,
    OWN_IMAGE_PULL_POLICY,
    TOOLBOX_IMAGE,
)
from cyclone.engine.core.podbuilder import build_stage_pod
from cyclone.engine.core.serversettings import ServerSettings
from cyclone.node import HostRuntime
from cyclone.node.runtimes.base import ContainerLaunch
from cyclone.node.runtimes.host import image_entry
from cyclone.resolvers import RESOLVER_SCRIPTS, resolver_image_overlays, resolver_script
from cyclone.server.builtins import builtin_resource_types
from cyclone.server.watchdog import watchdog_pod

from .archives import BUILD, REPO


def test_every_own_image_is_tagged_with_the_package_version() -> None:
    assert IMAGE_TAG == __version__ == "0.1.0"
    assert dict(DEFAULT_RESOLVER_IMAGES) == {
        "Git": "cyclone/resolver-git:0.1.0", "Svn": "cyclone/resolver-svn:0.1.0",
        "Image": "cyclone/resolver-image:0.1.0", "Http": "cyclone/resolver-http:0.1.0"}
    assert TOOLBOX_IMAGE == "cyclone/toolbox:0.1.0"


def test_gc_watchdog_and_cache_cleaning_default_to_the_toolbox() -> None:
    assert EngineConfig().gc_image == TOOLBOX_IMAGE
    assert ServerSettings().gc_image == TOOLBOX_IMAGE
    assert GC_IMAGE.default == TOOLBOX_IMAGE
    gc = build_gc_pod("run-1", "ns", "pvc")["spec"]["containers"][0]
    clean = build_clean_cache_pod("proj", "t", "ns", "pvc")["spec"]["containers"][0]
    watch = watchdog_pod("t", "ns", "pvc", "http://server")["spec"]["containers"][0]
    for container in (gc, clean, watch):
        assert (container["image"], container["imagePullPolicy"]) == (
            TOOLBOX_IMAGE, "IfNotPresent")
    assert OWN_IMAGE_PULL_POLICY == "IfNotPresent"


def test_resolver_containers_pull_if_not_present_and_workloads_keep_theirs() -> None:
    output = Resource.from_object({
        "apiVersion": "cyclone.dev/v1alpha1", "kind": "Resource", "metadata": {"name": "img"},
        "spec": {"type": "Image", "parameters": [{"name": "REGISTRY", "value": "r.local"}]}})
    pod_spec = stage().spec.pod.model_dump(by_alias=True, exclude_none=True)
    pod_spec["outputs"] = {"resources": [{"name": "img", "path": "/workspace/image"}]}
    pod_spec["spec"]["containers"][0]["command"] = ["make"]
    pod = build_stage_pod(context(stage=stage(pod=pod_spec), resources={
        "src": context().resources["src"], "img": output}))
    pull = pod["spec"]["initContainers"][0]
    push = pod["spec"]["containers"][-1]
    assert (pull["image"], pull["imagePullPolicy"]) == (DEFAULT_RESOLVER_IMAGES["Git"],
                                                        "IfNotPresent")
    assert (push["image"], push["imagePullPolicy"]) == (DEFAULT_RESOLVER_IMAGES["Image"],
                                                        "IfNotPresent")
    assert "imagePullPolicy" not in pod["spec"]["containers"][0]


def test_builtin_resource_types_name_the_tagged_resolvers() -> None:
    types = builtin_resource_types(dict(DEFAULT_RESOLVER_IMAGES))
    assert {t["spec"]["type"]: t["spec"]["resolver"] for t in types} == dict(
        DEFAULT_RESOLVER_IMAGES)


def test_the_build_makes_the_images_the_defaults_name() -> None:
    script = BUILD.read_text()
    built = re.search(r"^ALL_IMAGES=\(([^)]*)\)", script, re.M).group(1).split()
    own = {TOOLBOX_IMAGE, *DEFAULT_RESOLVER_IMAGES.values(), f"cyclone/cyclone:{IMAGE_TAG}",
           f"cyclone/pause:{IMAGE_TAG}"}
    assert {f"cyclone/{name}:{IMAGE_TAG}" for name in built} == own
    assert 'ref="docker.io/cyclone/${name}:${VERSION}"' in script


def test_deploy_manifests_and_chart_run_the_built_cyclone_image() -> None:
    values = yaml.safe_load((REPO / "deploy/helm/cyclone/values.yaml").read_text())["image"]
    assert (values["repository"], str(values["tag"]), values["pullPolicy"]) == (
        "cyclone/cyclone", IMAGE_TAG, "IfNotPresent")
    for manifest in ("engine.yaml", "server.yaml"):
        text = (REPO / "deploy" / manifest).read_text()
        assert re.findall(r"^\s*(?:- )?image: (\S+)", text, re.M) == [
            f"cyclone/cyclone:{IMAGE_TAG}"]
    assert re.findall(r"gc_image: (\S+)", (REPO / "deploy/engine.yaml").read_text()) == [
        TOOLBOX_IMAGE]


def launch(tmp_path: Path, image: str) -> ContainerLaunch:
    return ContainerLaunch(
        pod_uid="u", pod_name="p", namespace="ns", name="c", image=image, command=[],
        args=["pull"], env={}, working_dir="/workspace", binds=[],
        state_dir=tmp_path / "state", log_path=tmp_path / "c.log")


def test_host_runtime_stands_in_for_a_resolver_under_any_tag_or_registry(
        tmp_path: Path) -> None:
    runtime = HostRuntime(resolver_image_overlays())
    script = str(resolver_script(RESOLVER_SCRIPTS["cyclone/resolver-git"]))
    for image in ("cyclone/resolver-git", "cyclone/resolver-git:0.1.0",
                  "docker.io/cyclone/resolver-git:0.1.0",
                  "mirror.example:5000/team/cyclone/resolver-git@sha256:abc"):
        mounts = {m.target: str(m.source) for m in runtime.plan(launch(tmp_path, image)).mounts}
        assert mounts.get("/entrypoint.sh") == script, image
    other = runtime.plan(launch(tmp_path, "example/resolver-git:0.1.0")).mounts
    assert "/entrypoint.sh" not in {m.target for m in other}


def test_image_entry_prefers_the_most_specific_name() -> None:
    table = {"team/tool": "team's", "tool": "plain"}
    assert image_entry(table, "registry.example/team/tool:1") == "team's"
    assert image_entry(table, "registry.example/other/tool:1") == "plain"
    assert image_entry(table, "registry.example/other/thing:1") is None
