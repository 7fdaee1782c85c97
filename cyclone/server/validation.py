"""Admission checks of Cyclone objects before they are written."""

from __future__ import annotations

from typing import Any

from cyclone.api.registry import model_for_kind
from cyclone.kube import errors


def _check_workflow_dag(spec: dict) -> None:
    stages = spec.get("stages") or []
    names = [s.get("name") for s in stages if isinstance(s, dict)]
    seen: set[str] = set()
    for index, name in enumerate(names):
        if not name:
            raise errors.Invalid(f"spec.stages[{index}].name: required")
        if name in seen:
            raise errors.Invalid(f"spec.stages[{index}].name: duplicate stage {name!r}")
        seen.add(name)
    depends = {s["name"]: list(s.get("depends") or []) for s in stages}
    for name, deps in depends.items():
        for dep in deps:
            if dep not in depends:
                raise errors.Invalid(
                    f"spec.stages[{names.index(name)}].depends: unknown stage {dep!r}"
                )
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in depends[node]:
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep):], dep] if dep in path else [node, dep]
                raise errors.Invalid(f"spec.stages: dependency cycle {' -> '.join(cycle)}")
            if not state.get(dep):
                visit(dep, [*path, dep])
        state[node] = 2

    for name in depends:
        if not state.get(name):
            visit(name, [name])


def _check_stage(spec: dict) -> None:
    has_pod, has_delegation = spec.get("pod") is not None, spec.get("delegation") is not None
    if has_pod == has_delegation:
        raise errors.Invalid("spec: a stage needs exactly one of spec.pod and spec.delegation")


def validate_object(obj: dict) -> dict[str, Any]:
    """Validate a Cyclone object against its model and rules; raises ValidationError/Invalid."""
    model_for_kind(obj["kind"]).from_object(obj)
    spec = obj.get("spec") or {}
    if obj["kind"] == "Workflow":
        _check_workflow_dag(spec)
    elif obj["kind"] == "Stage":
        _check_stage(spec)
    return obj
