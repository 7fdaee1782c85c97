"""References between Cyclone objects that a schema cannot check: the stages a Workflow
names and the stage outputs its stages read (``${stages.<stage>.outputs.<key>}``).

The engine resolves both when a run starts; checking them when the Workflow is applied
(and by ``cyclone lint`` between the objects of one file) reports them earlier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cyclone.api.strict import nearest
from cyclone.api.validation import FieldError

OUTPUT_REFERENCE = re.compile(r"\$\{stages\.(?P<stage>[^.{}]+)\.outputs\.(?P<key>[^{}]+)\}")
"""``${stages.<stage>.outputs.<key>}``, as the engine renders it."""


def output_references(value: Any) -> list[tuple[str, str]]:
    """(stage, key) of every output reference in a JSON-like value, in order."""
    if isinstance(value, str):
        return [(m.group("stage"), m.group("key")) for m in OUTPUT_REFERENCE.finditer(value)]
    items = value.values() if isinstance(value, Mapping) else value
    if isinstance(value, Mapping | list):
        return [ref for item in items for ref in output_references(item)]
    return []


def upstream_of(graph: Mapping[str, list[str]], stage: str) -> set[str]:
    """Every stage ``stage`` depends on, directly or through others (itself excluded)."""
    found: set[str] = set()
    todo = list(graph.get(stage, ()))
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(graph.get(name, ()))
    found.discard(stage)
    return found


def workflow_reference_errors(
    workflow: Mapping[str, Any],
    stages_by_name: Mapping[str, Mapping[str, Any]],
    where: str,
    suggestions: Iterable[str] | None = None,
) -> list[FieldError]:
    """What a Workflow names that does not exist, checked when it is applied.

    ``stages_by_name`` holds the Stage objects the workflow can use (those of its
    namespace); ``where`` names that place in messages ("project p"). Each stage of
    ``spec.stages`` must exist, and each ``${stages.<s>.outputs.<k>}`` of an existing
    stage's pod must name a stage upstream of it. Errors name the field and suggest the
    nearest valid name, taken from ``suggestions`` when given (the project's own stages
    rather than every template of the namespace).
    """
    items = [i for i in ((workflow.get("spec") or {}).get("stages") or [])
             if isinstance(i, Mapping)]
    graph = {str(i.get("name")): [str(d) for d in i.get("depends") or []] for i in items}
    known = list(graph)
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        name = str(item.get("name"))
        if name not in stages_by_name:
            pool = stages_by_name if suggestions is None else suggestions
            hint = _did_you_mean(name, [n for n in pool if n not in known])
            errors.append(FieldError(f"spec.stages[{index}].name",
                                     f"stage {name!r} not found in {where}{hint}"))
            continue
        pod = (stages_by_name[name].get("spec") or {}).get("pod")
        upstream = upstream_of(graph, name)
        for ref_stage, key in dict.fromkeys(output_references(pod or {})):
            ref = f"${{stages.{ref_stage}.outputs.{key}}}"
            if ref_stage not in known:
                problem = (f"stage {name!r} uses {ref}: no stage {ref_stage!r} in the "
                           f"workflow{_did_you_mean(ref_stage, sorted(upstream))}")
            elif ref_stage not in upstream:
                problem = (f"stage {name!r} uses {ref}: stage {ref_stage!r} is not "
                           f"upstream of {name!r} (add it to depends)")
            else:
                continue
            errors.append(FieldError(f"spec.stages[{index}]", problem))
    return errors


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    match = nearest(name, candidates)
    return f" (did you mean {match!r}?)" if match else ""
