"""Checks on a workflow that need the engine's rules (the API checks the rest)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cyclone.api.references import output_references
from cyclone.engine.core.dag import dag_stages, upstream_stages


def as_json(obj: Any) -> Any:
    """A model as its JSON-shaped dict (camelCase keys); dicts and plain values as given."""
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(by_alias=True, exclude_none=True, mode="json")
    return obj


def _workflow_stages(workflow: Any) -> list[Any]:
    data = as_json(workflow) or {}
    spec = data.get("spec", data) if isinstance(data, Mapping) else {}
    return list(spec.get("stages") or [])


def validate_output_references(
    workflow: Any,
    stages_by_name: Mapping[str, Any],
    run_stage_parameters: Iterable[Any] | None = None,
) -> list[str]:
    """Messages for every ``${stages.<s>.outputs.<k>}`` whose stage is not upstream.

    ``workflow`` is a Workflow (model or object dict), ``stages_by_name`` the Stage
    objects by name; ``run_stage_parameters`` optionally the run's ``spec.stages[]``
    (``{name, parameters}``), whose values are checked the same way.
    """
    nodes = dag_stages(_workflow_stages(workflow))
    known = {node.name for node in nodes}
    run_params: dict[str, Any] = {}
    for item in run_stage_parameters or ():
        entry = as_json(item)
        run_params[str(entry.get("name"))] = entry.get("parameters") or []
    errors: list[str] = []
    for node in nodes:
        stage_obj = as_json(stages_by_name.get(node.name)) or {}
        pod = (stage_obj.get("spec") or {}).get("pod") if isinstance(stage_obj, Mapping) else None
        refs = output_references(pod or {}) + output_references(run_params.get(node.name, []))
        if not refs:
            continue
        upstream = upstream_stages(nodes, node.name)
        for ref_stage, key in refs:
            ref = f"${{stages.{ref_stage}.outputs.{key}}}"
            if ref_stage not in known:
                errors.append(f'stage "{node.name}": {ref} refers to unknown stage "{ref_stage}"')
            elif ref_stage not in upstream:
                errors.append(
                    f'stage "{node.name}": {ref} refers to stage "{ref_stage}", '
                    f'which is not upstream of "{node.name}"'
                )
    return list(dict.fromkeys(errors))
