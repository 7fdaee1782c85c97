"""No field Cyclone writes is lost to the CRD schema a kube-apiserver stores objects under.

The embedded cluster keeps fields its CRD does not name; a kube-apiserver prunes them
silently. `pruned_fields` says what the apiserver would drop, and every object the engine
and the server wrote during the end-to-end flows of `support.written_objects` is checked
against the shipped CRDs with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from support.written_objects import written_objects

from cyclone.api import keys
from cyclone.api.integration import ClusterCredential
from cyclone.api.pruning import pruned_fields
from cyclone.engine.core.tenancy import record_patch
from cyclone.server.execution_credentials import execution_credential

SHIPPED_CRDS = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "cyclone-crds.yaml"

STRING = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": STRING, "kind": STRING, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "list": {"type": "array", "items": {"type": "object", "properties": {"a": STRING}}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                     "properties": {"typed": {"type": "object", "properties": {"b": STRING}}}},
            "map": {"type": "object", "additionalProperties": {
                "type": "object", "properties": {"c": STRING}}},
            "maybe": {"type": "string", "nullable": True},
            "plain": STRING,
            "bare": {"type": "object"},
        }},
    },
}


def shipped_schemas() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            for crd in yaml.safe_load_all(SHIPPED_CRDS.read_text()) if crd}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, ...]:
    return written_objects(tmp_path_factory.mktemp("written"))


def test_fields_the_schema_names_are_kept() -> None:
    obj = {"apiVersion": "v", "kind": "K", "metadata": {"name": "x", "labels": {"a": "b"}},
           "spec": {"list": [{"a": "1"}], "map": {"any": {"c": "2"}}, "maybe": None,
                    "plain": "p", "bare": {}, "free": {"typed": {"b": "3"}}}}
    assert pruned_fields(obj, SCHEMA) == []


def test_an_unnamed_field_is_pruned_at_any_depth() -> None:
    obj = {"spec": {"plain": "p", "extra": 1, "list": [{"a": "1"}, {"a": "2", "z": 3}],
                    "map": {"one": {"c": "x", "d": "y"}}, "bare": {"gone": True}}, "top": {}}
    assert pruned_fields(obj, SCHEMA) == [
        "spec.extra", "spec.list[1].z", "spec.map.one.d", "spec.bare.gone", "top",
    ]


def test_preserve_unknown_fields_keeps_unknown_ones_but_prunes_inside_named_ones() -> None:
    obj = {"spec": {"free": {"anything": {"deep": [1, {"x": None}]},
                             "typed": {"b": "kept", "c": "pruned"}}}}
    assert pruned_fields(obj, SCHEMA) == ["spec.free.typed.c"]


def test_a_null_is_pruned_unless_the_field_is_nullable() -> None:
    obj = {"spec": {"maybe": None, "plain": None, "map": {"k": None}}}
    assert pruned_fields(obj, SCHEMA) == ["spec.plain", "spec.map.k"]


def test_metadata_keeps_the_fields_of_object_meta_only() -> None:
    obj = {"apiVersion": "v", "kind": "K", "metadata": {
        "name": "x", "namespace": "n", "annotations": {"free": "form"}, "finalizers": ["f"],
        "ownerReferences": [], "resourceVersion": "1", "uid": "u", "owner": "me"}}
    assert pruned_fields(obj, SCHEMA) == ["metadata.owner"]


def test_the_workflowrun_crd_keeps_delegation_sent_and_nothing_unnamed_beside_it() -> None:
    schema = shipped_schemas()["WorkflowRun"]
    run = {"apiVersion": "cyclone.dev/v1alpha1", "kind": "WorkflowRun",
           "metadata": {"name": "r"}, "spec": {},
           "status": {"stages": {"approve": {"delegation": {"url": "http://x", "sent": True,
                                                            "sentAt": "now"}}}}}
    assert pruned_fields(run, schema) == ["status.stages.approve.delegation.sentAt"]


WRITTEN_FIELDS = (
    "WorkflowRun.spec.executionContext.pvc", "WorkflowRun.spec.globalVariables[].value",
    "WorkflowRun.spec.stopped", "WorkflowRun.spec.timeout", "WorkflowRun.spec.retryOf",
    "WorkflowRun.spec.resources[].parameters[].value",
    "WorkflowRun.status.cleaned", "WorkflowRun.status.completionTime",
    "WorkflowRun.status.dataRemoved", "WorkflowRun.status.deadline",
    "WorkflowRun.status.notifications.*.result", "WorkflowRun.status.notifications.*.message",
    "WorkflowRun.status.overall.startTime", "WorkflowRun.status.overall.reason",
    "WorkflowRun.status.queued",
    "WorkflowRun.status.stages.*.attempts", "WorkflowRun.status.stages.*.depends[]",
    "WorkflowRun.status.stages.*.trivial", "WorkflowRun.status.stages.*.pod.namespace",
    "WorkflowRun.status.stages.*.outputs[].value", "WorkflowRun.status.stages.*.events[].count",
    "WorkflowRun.status.stages.*.events[].lastTimestamp",
    "WorkflowRun.status.stages.*.delegation.url", "WorkflowRun.status.stages.*.delegation.deadline",
    "WorkflowRun.status.stages.*.delegation.sent",
    "WorkflowRun.status.stages.*.quotaRefusals",
    "WorkflowRun.status.stages.*.lastQuotaRefusalTime",
    "WorkflowRun.status.stages.*.status.message",
    "WorkflowTrigger.status.count", "WorkflowTrigger.status.lastFireTime",
    "ExecutionCluster.status.phase", "Stage.spec.pod.spec.containers[].image",
    "Resource.spec.bind.paramBindings.*",
)
"""Fields the flows must have written, so that the check below covers them."""

KEYED_MAPS = (".stages", ".notifications", ".paramBindings")
"""Maps keyed by names (a stage, a receiver's URL, a parameter): their keys become ``*``."""


def _leaf_paths(value: Any, path: str) -> set[str]:
    if isinstance(value, dict):
        keyed = path.endswith(KEYED_MAPS)
        return {p for key, item in value.items()
                for p in _leaf_paths(item, f"{path}.{'*' if keyed else key}")}
    if isinstance(value, list):
        return {p for item in value for p in _leaf_paths(item, f"{path}[]")}
    return {path}


def test_the_flows_write_every_kind_of_field_the_engine_and_server_have(
        written: tuple[dict, ...]) -> None:
    seen = set()
    for obj in written:
        for part in ("spec", "status"):
            if part in obj:
                seen |= _leaf_paths(obj[part], f"{obj['kind']}.{part}")
    assert set(WRITTEN_FIELDS) - seen == set()


def test_no_field_cyclone_writes_is_pruned_by_the_shipped_crds(
        written: tuple[dict, ...]) -> None:
    schemas = shipped_schemas()
    pruned = {(obj["kind"], path) for obj in written
              for path in pruned_fields(obj, schemas[obj["kind"]])}
    assert pruned == set(), "a kube-apiserver would drop these fields Cyclone writes: " \
        f"{sorted(pruned)}; add them to the models in cyclone/api and run `cyclone crds`"


def test_every_object_cyclone_writes_is_valid_under_the_shipped_crds(
        written: tuple[dict, ...]) -> None:
    validators = {kind: jsonschema.Draft4Validator(schema)
                  for kind, schema in shipped_schemas().items()}
    for obj in written:
        validators[obj["kind"]].validate(obj)


def _every_field(model: type) -> dict[str, Any]:
    """A value for each field of an integration model, nested models filled the same way."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        nested = next((t for t in getattr(field.annotation, "__args__", (field.annotation,))
                       if isinstance(t, type) and hasattr(t, "model_fields")), None)
        alias = field.alias or name
        if nested is not None:
            values[alias] = _every_field(nested)
        elif name == "kube_config":
            values[alias] = yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                            "clusters": [{"name": "c", "cluster": {}}]})
        else:
            values[alias] = True if name == "insecure" else f"{name}-value"
    return values


def test_an_execution_cluster_made_from_a_cluster_integration_keeps_every_credential_field(
        ) -> None:
    """What the server's opencluster stores: every field a Cluster integration's credential
    may carry reaches the ExecutionCluster the engine connects with."""
    credential = _every_field(ClusterCredential)
    obj = {"apiVersion": keys.API_VERSION, "kind": "ExecutionCluster",
           "metadata": {"name": "worker", **record_patch(None, "t", "worker", ("ns", "pvc"))[
               "metadata"]},
           "spec": {"credential": execution_credential(credential)}}
    assert set(obj["spec"]["credential"]) == set(credential)
    assert pruned_fields(obj, shipped_schemas()["ExecutionCluster"]) == []
