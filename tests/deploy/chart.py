"""Reading deploy/: its manifests, and the Helm chart rendered by plain substitution.

The chart's templates are plain YAML whose only template actions are `{{ .Values.a.b }}`,
`{{ .Release.Name }}` and `{{ .Release.Namespace }}`, so substituting them is exactly what
`helm template` would do with them. A template may also be optional as a whole: its first
line `{{- if .Values.a.b }}` and its last `{{- end }}`.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "cyclone"
ACTION = re.compile(r"\{\{(.*?)\}\}")
PLACEHOLDER = re.compile(r"^\s*\.(Values|Release)\.([A-Za-z0-9_.]+)\s*$")
WHOLE_FILE_CONDITION = re.compile(
    r"\A\{\{-? if \.Values\.([A-Za-z0-9_.]+) \}\}\n(.*\n)\{\{-? end \}\}\n?\Z", re.S)


class RenderError(Exception):
    pass


def plain_manifest_files() -> list[Path]:
    """Every YAML file of deploy/ that is applied as it is (not the chart)."""
    return sorted(p for p in DEPLOY.rglob("*.yaml") if CHART not in p.parents)


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def template_files() -> list[Path]:
    return sorted((CHART / "templates").glob("*.yaml"))


def _lookup(values: dict, dotted: str, where: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise RenderError(f"{where}: no value {dotted}")
        node = node[part]
    if isinstance(node, dict | list):
        raise RenderError(f"{where}: {dotted} is not a scalar")
    return node


def placeholders(text: str) -> list[tuple[str, str]]:
    """The (Values|Release, path) of every template action; anything else is an error."""
    condition = WHOLE_FILE_CONDITION.match(text)
    if condition is not None:
        return [("Values", condition.group(1)), *placeholders(condition.group(2))]
    found = []
    for action in ACTION.findall(text):
        match = PLACEHOLDER.match(action)
        if match is None:
            raise RenderError(f"unsupported template action {{{{{action}}}}}")
        found.append((match.group(1), match.group(2)))
    return found


def render_text(text: str, values: dict, release: dict[str, str], where: str = "") -> str:
    condition = WHOLE_FILE_CONDITION.match(text)
    if condition is not None:
        if not _lookup(values, condition.group(1), where):
            return ""
        text = condition.group(2)
    placeholders(text)

    def substitute(match: re.Match[str]) -> str:
        scope, dotted = PLACEHOLDER.match(match.group(1)).groups()  # type: ignore[union-attr]
        source = values if scope == "Values" else release
        return str(_lookup(source, dotted, where))

    return ACTION.sub(substitute, text)


def render_chart(
    overrides: dict | None = None, *, name: str = "cyclone", namespace: str = "cyclone"
) -> list[dict]:
    values = merge(chart_values(), overrides or {})
    release = {"Name": name, "Namespace": namespace}
    rendered: list[dict] = []
    for path in template_files():
        text = render_text(path.read_text(), values, release, path.name)
        rendered.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return rendered


def merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def leaf_paths(values: dict, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths |= leaf_paths(value, f"{path}.")
        else:
            paths.add(path)
    return paths


def by_identity(objects: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects
    }
