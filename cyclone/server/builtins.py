"""The built-in stage templates and resource types, kept in the `cyclone-system` namespace."""

from __future__ import annotations

from cyclone.api import keys
from cyclone.api.resource import BUILTIN_RESOURCE_TYPES
from cyclone.engine.core.images import replaces_default_resolver
from cyclone.kube import errors, kinds
from cyclone.kube.protocol import Cluster
from cyclone.server.cicd_templates import cicd_stage_templates

SYSTEM_NAMESPACE = keys.SYSTEM_NAMESPACE

_TEMPLATES: tuple[tuple[str, str, str, str, str], ...] = (
    ("shell", "Shell", "build", "busybox:1.36", "echo hello"),
    ("python-test", "Python test", "test", "python:3.11-slim",
     "pip install -r requirements.txt && python -m pytest"),
    ("golang-build", "Go build", "build", "golang:1.22", "go build ./..."),
    ("golang-test", "Go test", "test", "golang:1.22", "go test ./..."),
    ("maven-build", "Java Maven build", "build", "maven:3.9-eclipse-temurin-17",
     "mvn -B package -DskipTests"),
    ("maven-test", "Java Maven test", "test", "maven:3.9-eclipse-temurin-17", "mvn -B test"),
    ("nodejs-build", "Node.js build", "build", "node:20", "npm ci && npm run build"),
    ("nodejs-test", "Node.js test", "test", "node:20", "npm ci && npm test"),
)


def builtin_stage_templates() -> list[dict]:
    templates = []
    for name, alias, scene, image, cmd in _TEMPLATES:
        templates.append({
            "apiVersion": keys.API_VERSION,
            "kind": "Stage",
            "metadata": {
                "name": name,
                "namespace": SYSTEM_NAMESPACE,
                "labels": {keys.LABEL_BUILTIN: "true", keys.LABEL_STAGE_TEMPLATE: "true",
                           keys.LABEL_SCENE: scene},
                "annotations": {keys.ANNOTATION_ALIAS: alias,
                                keys.ANNOTATION_DESCRIPTION: f"{alias} in {image}"},
            },
            "spec": {"pod": {
                "inputs": {"arguments": [
                    {"name": "image", "value": image, "description": "Image to run in"},
                    {"name": "cmd", "value": cmd, "description": "Shell commands to run"},
                ]},
                "spec": {"containers": [{
                    "image": "{{ image }}",
                    "command": ["/bin/sh", "-e", "-c", "{{{ cmd }}}"],
                }]},
            }},
        })
    return [*templates, *cicd_stage_templates()]


_RESOURCE_TYPE_PARAMETERS = {
    "Git": ("SCM_URL", "SCM_REPO", "SCM_REVISION", "SCM_AUTH"),
    "Svn": ("SCM_URL", "SCM_REPO", "SCM_REVISION", "SCM_AUTH"),
    "Image": ("REGISTRY", "REPOSITORY", "TAG", "USER", "PASSWORD", "INSECURE"),
    "Http": ("URL",),
}
_RESOURCE_TYPE_OPERATIONS = {"Git": ["pull"], "Svn": ["pull"], "Image": ["push"],
                             "Http": ["push"]}
_RESOURCE_TYPE_BINDINGS = {
    "Git": {"integrationType": "SCM", "paramBindings": {
        "SCM_URL": "scm.server", "SCM_AUTH": "scm.token"}},
    "Svn": {"integrationType": "SCM", "paramBindings": {
        "SCM_URL": "scm.server", "SCM_AUTH": "scm.password"}},
    "Image": {"integrationType": "DockerRegistry", "paramBindings": {
        "REGISTRY": "dockerRegistry.server", "USER": "dockerRegistry.user",
        "PASSWORD": "dockerRegistry.password"}},
}


def builtin_resource_types(resolver_images: dict[str, str] | None = None) -> list[dict]:
    images = resolver_images or {}
    out = []
    for type_name in BUILTIN_RESOURCE_TYPES:
        spec: dict = {
            "type": type_name,
            "parameters": [{"name": p, "required": p in ("SCM_URL", "REGISTRY", "URL")}
                           for p in _RESOURCE_TYPE_PARAMETERS.get(type_name, ())],
            "operations": _RESOURCE_TYPE_OPERATIONS.get(type_name, ["pull"]),
        }
        if images.get(type_name):
            spec["resolver"] = images[type_name]
        if type_name in _RESOURCE_TYPE_BINDINGS:
            spec["bind"] = _RESOURCE_TYPE_BINDINGS[type_name]
        out.append({
            "apiVersion": keys.API_VERSION,
            "kind": "Resource",
            "metadata": {
                "name": type_name.lower(),
                "namespace": SYSTEM_NAMESPACE,
                "labels": {keys.LABEL_BUILTIN: "true", keys.LABEL_RESOURCE_TEMPLATE: "true"},
                "annotations": {keys.ANNOTATION_ALIAS: type_name},
            },
            "spec": spec,
        })
    return out


async def ensure_builtins(cluster: Cluster, resolver_images: dict[str, str] | None = None
                          ) -> None:
    """Create the built-in templates and resource types that are missing; keep edits, but
    move a resource type still naming an earlier release's default resolver to this one's."""
    for obj in [*builtin_stage_templates(), *builtin_resource_types(resolver_images)]:
        try:
            await cluster.create(obj, namespace=SYSTEM_NAMESPACE)
        except errors.AlreadyExists:
            if obj["kind"] == "Resource" and obj["spec"].get("resolver"):
                await _upgrade_default_resolver(cluster, obj)


async def _upgrade_default_resolver(cluster: Cluster, obj: dict) -> None:
    name = obj["metadata"]["name"]
    try:
        stored = await cluster.get(kinds.RESOURCE, name, SYSTEM_NAMESPACE)
        if replaces_default_resolver((stored.get("spec") or {}).get("resolver"),
                                     obj["spec"]["resolver"]):
            stored["spec"]["resolver"] = obj["spec"]["resolver"]
            await cluster.replace(stored)
    except (errors.NotFound, errors.Conflict):
        pass
