"""The workflow editor's model: what is being edited, the edits, and how they read as YAML.

The editor's whole state travels in one hidden form field as JSON (`EditorState`): the
workflow spec being built and the specs of the Stage objects that are new or changed. Each
request applies one action to it and the page is rendered again; nothing is stored until
Save. Everything here is pure: loading, validating and writing are the page's job.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_STATE_BYTES = 2_000_000
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class EditError(ValueError):
    """An action that cannot apply; its message is shown to the user as is, next to the
    form field `field` when there is one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class EditorState:
    spec: dict[str, Any]
    """The workflow spec being built."""
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Stage name → the spec it will have: stages new to the tenant or edited here."""
    new: list[str] = field(default_factory=list)
    """Which of `stages` do not exist yet."""
    resource_version: str = ""
    """The workflow's version when editing began: saving over a newer one is refused."""
    selected: str = ""

    @classmethod
    def start(cls, workflow: Mapping[str, Any]) -> EditorState:
        meta = workflow.get("metadata") or {}
        return cls(copy.deepcopy(dict(workflow.get("spec") or {})),
                   resource_version=str(meta.get("resourceVersion") or ""))

    @classmethod
    def from_json(cls, text: str) -> EditorState:
        if len(text.encode()) > MAX_STATE_BYTES:
            raise EditError("the edited workflow is too large to handle here: apply it as YAML")
        try:
            data = json.loads(text)
        except ValueError:
            raise EditError("the editor's form was damaged: reload the page") from None
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) \
                or not isinstance(data.get("stages", {}), dict):
            raise EditError("the editor's form was damaged: reload the page")
        stages = {str(k): v for k, v in data.get("stages", {}).items() if isinstance(v, dict)}
        return cls(data["spec"], stages,
                   [str(n) for n in data.get("new") or [] if str(n) in stages],
                   str(data.get("resourceVersion") or ""), str(data.get("selected") or ""))

    def to_json(self) -> str:
        return json.dumps({"spec": self.spec, "stages": self.stages, "new": self.new,
                           "resourceVersion": self.resource_version,
                           "selected": self.selected}, separators=(",", ":"))

    @property
    def items(self) -> list[dict[str, Any]]:
        stages = self.spec.get("stages")
        return stages if isinstance(stages, list) else []

    def names(self) -> list[str]:
        return [str(i.get("name")) for i in self.items if isinstance(i, dict)]

    def item(self, name: str) -> dict[str, Any]:
        for item in self.items:
            if isinstance(item, dict) and item.get("name") == name:
                return item
        raise EditError(f"stage {name!r} is not in this workflow")


def check_new_name(name: str, taken: Iterable[str]) -> str:
    name = name.strip()
    if not name:
        raise EditError("name the new stage", "name")
    if len(name) > 63 or not _NAME.match(name):
        raise EditError(f"stage name {name!r}: lower-case letters, digits and '-', "
                        "starting and ending with a letter or digit, at most 63 characters",
                        "name")
    if name in set(taken):
        raise EditError(f"a stage named {name!r} already exists: choose another name", "name")
    return name


def free_name(base: str, taken: Iterable[str]) -> str:
    """`base`, or `base-2`, `base-3` … whichever is not taken."""
    used = set(taken)
    if base not in used:
        return base
    number = 2
    while f"{base}-{number}" in used:
        number += 1
    return f"{base}-{number}"


def add_stage(state: EditorState, name: str, spec: Mapping[str, Any] | None) -> None:
    """Add `name` to the workflow; with `spec`, as a new Stage object of that spec."""
    if name in state.names():
        raise EditError(f"stage {name!r} is already in this workflow")
    state.spec["stages"] = [*state.items, {"name": name}]
    if spec is not None:
        state.stages[name] = copy.deepcopy(dict(spec))
        if name not in state.new:
            state.new.append(name)
    state.selected = name


def connect(state: EditorState, upstream: str, downstream: str) -> None:
    """`downstream` depends on `upstream` (a cycle is left for validation to report)."""
    if upstream == downstream:
        raise EditError("a stage cannot depend on itself")
    state.item(upstream)
    item = state.item(downstream)
    depends = [str(d) for d in item.get("depends") or []]
    if upstream in depends:
        raise EditError(f"{downstream!r} already depends on {upstream!r}")
    item["depends"] = [*depends, upstream]


def disconnect(state: EditorState, upstream: str, downstream: str) -> None:
    item = state.item(downstream)
    depends = [str(d) for d in item.get("depends") or []]
    if upstream not in depends:
        raise EditError(f"{downstream!r} does not depend on {upstream!r}")
    depends.remove(upstream)
    if depends:
        item["depends"] = depends
    else:
        item.pop("depends", None)


def set_trivial(state: EditorState, name: str, trivial: bool) -> None:
    """Mark a stage whose failure does not fail the run (`trivial`), or unmark it; an
    unmarked stage keeps the spelling it had (absent or `false`)."""
    item = state.item(name)
    if trivial:
        item["trivial"] = True
    elif item.get("trivial"):
        del item["trivial"]


def rename_stage(state: EditorState, old: str, new: str) -> None:
    """Give a stage added here (not stored yet) another name, in every `depends` too."""
    if old not in state.new:
        raise EditError(f"{old!r} is a stored Stage: only a stage added here can be renamed",
                        "name")
    if new in state.names():
        raise EditError(f"stage {new!r} is already in this workflow", "name")
    for item in state.items:
        if item.get("name") == old:
            item["name"] = new
        if old in (item.get("depends") or []):
            item["depends"] = [new if d == old else d for d in item["depends"]]
    state.stages[new] = state.stages.pop(old)
    state.new[state.new.index(old)] = new
    if state.selected == old:
        state.selected = new


def remove_stage(state: EditorState, name: str) -> None:
    """Take `name` out of the workflow and out of every `depends`; a stage new here is
    forgotten, a stored Stage object is left as it is (other workflows may use it)."""
    state.item(name)
    state.spec["stages"] = [i for i in state.items
                            if not (isinstance(i, dict) and i.get("name") == name)]
    for item in state.items:
        if isinstance(item, dict) and name in (item.get("depends") or []):
            item["depends"] = [d for d in item["depends"] if d != name]
            if not item["depends"]:
                item.pop("depends")
    if name in state.new:
        state.new.remove(name)
        state.stages.pop(name, None)
    if state.selected == name:
        state.selected = ""


@dataclass(frozen=True)
class StageFields:
    """The fields of a pod Stage the form edits, as text; the rest of the spec is kept."""

    image: str = ""
    command: str = ""
    args: str = ""
    env: str = ""
    arguments: str = ""
    outputs: str = ""

    NAMES = ("image", "command", "args", "env", "arguments", "outputs")


def _container(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (((spec.get("pod") or {}).get("spec") or {}).get("containers")) or []
    return containers[0] if containers and isinstance(containers[0], Mapping) else {}


def is_pod_stage(spec: Mapping[str, Any]) -> bool:
    return isinstance(spec.get("pod"), Mapping) and spec.get("delegation") is None


def _pairs(items: Any, key: str, value: str) -> str:
    lines = []
    for item in items or []:
        if isinstance(item, Mapping) and item.get(key) is not None:
            lines.append(f"{item[key]}={item.get(value) or ''}")
    return "\n".join(lines)


def stage_fields(spec: Mapping[str, Any]) -> StageFields:
    container = _container(spec)
    pod = spec.get("pod") or {}
    return StageFields(
        image=str(container.get("image") or ""),
        command="\n".join(str(c) for c in container.get("command") or []),
        args="\n".join(str(a) for a in container.get("args") or []),
        env=_pairs(container.get("env"), "name", "value"),
        arguments=_pairs((pod.get("inputs") or {}).get("arguments"), "name", "value"),
        outputs=_pairs((pod.get("outputs") or {}).get("artifacts"), "name", "path"),
    )


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


def _parse_pairs(text: str, what: str, key: str, value: str) -> list[dict[str, str]]:
    result = []
    for number, line in enumerate(_lines(text), 1):
        name, equals, rest = line.partition("=")
        if not equals or not name.strip():
            raise EditError(f"{what}, line {number}: write NAME=VALUE, got {line.strip()!r}",
                            what)
        result.append({key: name.strip(), value: rest})
    return result


def apply_fields(spec: Mapping[str, Any], fields: StageFields) -> dict[str, Any]:
    """`spec` with the form's fields written into its first container, inputs and outputs.
    Raises `EditError` naming the field for a line that does not parse."""
    result = copy.deepcopy(dict(spec))
    pod = result.setdefault("pod", {})
    pod_spec = pod.setdefault("spec", {})
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers or \
            not isinstance(containers[0], dict):
        containers = pod_spec["containers"] = [{}]
    container = containers[0]
    container["image"] = fields.image.strip()
    env = _parse_pairs(fields.env, "env", "name", "value")
    arguments = _parse_pairs(fields.arguments, "arguments", "name", "value")
    outputs = _parse_pairs(fields.outputs, "outputs", "name", "path")
    for key, values in (("command", _lines(fields.command)), ("args", _lines(fields.args)),
                        ("env", env)):
        if values:
            container[key] = values
        else:
            container.pop(key, None)
    _merge_named(pod.setdefault("inputs", {}), "arguments", arguments, "value")
    _merge_named(pod.setdefault("outputs", {}), "artifacts", outputs, "path")
    for part in ("inputs", "outputs"):
        if not pod[part]:
            pod.pop(part)
    return result


def _merge_named(holder: dict[str, Any], key: str, items: list[dict[str, str]],
                 edited: str) -> None:
    """Items of the form replace `holder[key]`, each keeping the other fields (such as a
    description) its namesake had."""
    before = {i.get("name"): i for i in holder.get(key) or [] if isinstance(i, Mapping)}
    merged = []
    for item in items:
        kept = dict(before.get(item["name"], {}))
        kept.update(item)
        if edited == "value" and not kept.get(edited):
            kept.pop(edited, None)
        merged.append(kept)
    if merged:
        holder[key] = merged
    else:
        holder.pop(key, None)


def field_of(path: str) -> str:
    """Which form field a validation error's path (`spec.pod.spec.containers[0].image`)
    belongs to; "" when it is none of them."""
    container = re.match(r"^spec\.pod\.spec\.containers\[0\]\.(image|command|args|env)\b",
                         path)
    if container:
        return container.group(1)
    if path.startswith("spec.pod.inputs.arguments"):
        return "arguments"
    if path.startswith("spec.pod.outputs.artifacts"):
        return "outputs"
    return ""


def stage_of(path: str, names: list[str]) -> str:
    """The stage a workflow error's path (`spec.stages[2].depends`) is about, or ""."""
    found = re.match(r"^spec\.stages\[(\d+)\]", path)
    if found and int(found.group(1)) < len(names):
        return names[int(found.group(1))]
    return ""


def as_yaml(obj: Mapping[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False,
                          allow_unicode=True)


def manifest(kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the diff shows of an object: its kind, name and spec."""
    return {"kind": kind, "metadata": {"name": name}, "spec": dict(spec)}


@dataclass(frozen=True)
class DiffLine:
    kind: str
    """`add`, `del`, `hunk`, `file` or `same`."""
    text: str


@dataclass(frozen=True)
class FileDiff:
    title: str
    lines: list[DiffLine]


def unified_diff(title: str, before: Mapping[str, Any] | None,
                 after: Mapping[str, Any] | None) -> FileDiff | None:
    """The YAML diff of one object (None when nothing changed)."""
    old, new = as_yaml(before), as_yaml(after)
    if old == new:
        return None
    lines = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(),
                                     "stored" if before is not None else "/dev/null",
                                     "edited", lineterm="", n=3):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        lines.append(DiffLine(kind, line))
    return FileDiff(title, lines)
