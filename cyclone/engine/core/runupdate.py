"""What an update of a WorkflowRun may change: its own labels and annotations, never its spec
(the engine runs what was started), its status, nor what Cyclone records on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.runstart import Refusal

USER_CYCLONE_ANNOTATIONS = frozenset({keys.ANNOTATION_ALIAS, keys.ANNOTATION_DESCRIPTION})
"""Annotations of Cyclone's domain that a user writes (the run's display name and note)."""
FIXED_LABELS = frozenset({keys.LABEL_PROJECT, keys.LABEL_WORKFLOW})


def cyclone_owned(key: str) -> bool:
    """Whether a label or annotation key is Cyclone's own record (its prefix is
    ``cyclone.dev`` or a subdomain of it), which only Cyclone writes."""
    prefix, slash, _ = key.rpartition("/")
    if not slash or key in USER_CYCLONE_ANNOTATIONS:
        return False
    return prefix == "cyclone.dev" or prefix.endswith(".cyclone.dev")


def _owned(values: Mapping[str, str], fixed: frozenset[str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if cyclone_owned(k) or k in fixed}


def _changed(kind: str, stored: Mapping[str, str], given: Mapping[str, str],
             fixed: frozenset[str]) -> list[dict[str, str]]:
    return [{"field": f"metadata.{kind}[{k}]",
             "message": "written by Cyclone; it cannot be changed"}
            for k, v in sorted(given.items())
            if (cyclone_owned(k) or k in fixed) and stored.get(k) != v]


def _spec_changes(stored: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in {*stored, *given} if stored.get(k) != given.get(k))


def run_update(stored: Mapping[str, Any], labels: Mapping[str, str],
               annotations: Mapping[str, str], spec: Mapping[str, Any] | None
               ) -> tuple[dict[str, Any], Refusal | None]:
    """The labels and annotations to write, or why the update is refused.

    The body's labels and annotations replace the run's own; Cyclone's (`cyclone_owned`,
    the project and workflow labels) are kept whatever the body leaves out, and a body that
    gives one another value is refused (409). A ``spec`` given and not equal to the stored
    one is refused (409), naming the first field that differs; None or ``{}`` leaves it.
    """
    meta = stored.get("metadata") or {}
    stored_labels = dict(meta.get("labels") or {})
    stored_annotations = dict(meta.get("annotations") or {})
    causes = (_changed("labels", stored_labels, labels, FIXED_LABELS)
              + _changed("annotations", stored_annotations, annotations, frozenset()))
    name = meta.get("name")
    if spec:
        changed = _spec_changes(stored.get("spec") or {}, spec)
        causes += [{"field": f"spec.{k}",
                    "message": "a started run's spec cannot change"} for k in changed]
    if causes:
        first = causes[0]
        return {}, Refusal(f"workflowrun {name!r}: {first['field']}: {first['message']}",
                           causes, conflict=True)
    new_labels = {**labels, **_owned(stored_labels, FIXED_LABELS)}
    new_annotations = {**annotations, **_owned(stored_annotations, frozenset())}
    return {"labels": new_labels, "annotations": new_annotations}, None
