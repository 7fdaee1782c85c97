"""Objects shared by the core tests, built from v1alpha1 manifests."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from cyclone.api.project import Project
from cyclone.api.resource import Resource
from cyclone.api.stage import Stage
from cyclone.api.workflow import Workflow
from cyclone.api.workflowrun import WorkflowRun
from cyclone.engine.core.dag import DagStage
from cyclone.engine.core.podbuilder import StagePodContext

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
META_NS = "cyclone-devops"
WORK_NS = "cyclone-devops-worker"

# a -> b -> d, a -> c -> d, e independent
DIAMOND = [
    DagStage("a"),
    DagStage("b", ("a",)),
    DagStage("c", ("a",)),
    DagStage("d", ("b", "c")),
    DagStage("e"),
]


def git_resource(name: str = "src", **spec: Any) -> Resource:
    return Resource.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": name, "namespace": META_NS},
            "spec": {
                "type": "Git",
                "parameters": [
                    {"name": "SCM_URL", "value": "https://github.com"},
                    {"name": "SCM_REPO", "value": "acme/app"},
                    {"name": "SCM_REVISION", "value": "main"},
                    {"name": "SCM_AUTH", "value": "${variables.TOKEN}"},
                ],
                **spec,
            },
        }
    )


def stage(name: str = "build", pod: dict[str, Any] | None = None, **spec: Any) -> Stage:
    pod = pod or {
        "inputs": {
            "resources": [{"name": "src", "type": "Git", "path": "/workspace/src"}],
            "arguments": [
                {"name": "image", "value": "golang:1.22"},
                {"name": "cmd", "required": True},
            ],
        },
        "spec": {
            "containers": [
                {
                    "image": "{{ image }}",
                    "command": ["sh", "-c", "{{{ cmd }}}"],
                    "workingDir": "/workspace/src",
                }
            ],
            "tolerations": [{"key": "ci", "operator": "Exists"}],
        },
    }
    return Stage.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Stage",
            "metadata": {"name": name, "namespace": META_NS},
            "spec": {"pod": pod, **spec},
        }
    )


def workflow(stages: list[dict[str, Any]] | None = None, **spec: Any) -> Workflow:
    return Workflow.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Workflow",
            "metadata": {
                "name": "ci",
                "namespace": META_NS,
                "labels": {"project.cyclone.dev/name": "shop"},
            },
            "spec": {
                "stages": stages or [{"name": "build"}],
                "globalVariables": [{"name": "TOKEN", "value": "wf-token"}],
                **spec,
            },
        }
    )


def run(**spec: Any) -> WorkflowRun:
    return WorkflowRun.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "WorkflowRun",
            "metadata": {"name": "ci-run-1", "namespace": META_NS},
            "spec": {
                "workflowRef": {"kind": "Workflow", "name": "ci"},
                "stages": [
                    {"name": "build", "parameters": [{"name": "cmd", "value": "make test"}]}
                ],
                **spec,
            },
        }
    )


def project(quota: dict[str, Any] | None = None) -> Project:
    return Project.from_object(
        {
            "apiVersion": "cyclone.dev/v1alpha1",
            "kind": "Project",
            "metadata": {"name": "shop", "namespace": META_NS},
            "spec": {"quota": quota} if quota is not None else {},
        }
    )


def context(**overrides: Any) -> StagePodContext:
    values: dict[str, Any] = {
        "stage": stage(),
        "workflow": workflow(),
        "run": run(),
        "namespace": WORK_NS,
        "now": NOW,
        "rng": random.Random(7),
        "tenant": "devops",
        "pvc": "cyclone-pvc-devops",
        "resources": {"src": git_resource()},
        "default_service_account": "cyclone-runner",
    }
    values.update(overrides)
    return StagePodContext(**values)
