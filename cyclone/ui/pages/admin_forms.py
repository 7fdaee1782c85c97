"""The admin pages' forms as pure functions: which fields each integration type has, a
submitted form turned into the API's body, a stored object turned into the form's values,
and a refusal turned into the message under the field it is about.

Credential fields are write-only here as in the API: `form_values` never returns a
credential's value, only whether one is stored, and `integration_spec` leaves a blank
credential out of the body, which on an update keeps the stored value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from cyclone.api import keys
from cyclone.api.credentials import MASK
from cyclone.api.integration import SCMType
from cyclone.api.tenant import POD_FEATURES

FORM = "_form"
"""The key of a problem that belongs to no single field."""


@dataclass(frozen=True)
class Field:
    """One input of a form: `path` is its dotted wire path under the integration's source."""

    path: str
    label: str
    kind: str = "text"
    """text, secret (one-line credential), secret-text (multi-line credential), bool
    (checkbox), choice (select of `choices`; the empty choice leaves the field out)."""
    choices: tuple[str, ...] = ()
    hint: str = ""

    @property
    def secret(self) -> bool:
        return self.kind in ("secret", "secret-text")


SOURCE_KEYS = {"SCM": "scm", "DockerRegistry": "dockerRegistry", "SonarQube": "sonarQube",
               "Cluster": "cluster", "General": "general"}
INTEGRATION_TYPES = tuple(SOURCE_KEYS)
SOURCE_FIELDS: dict[str, tuple[Field, ...]] = {
    "SCM": (
        Field("type", "SCM type", "choice", tuple(t.value for t in SCMType)),
        Field("server", "Server URL", hint="Empty for github.com or gitlab.com"),
        Field("user", "User"),
        Field("password", "Password", "secret"),
        Field("token", "API token", "secret"),
        Field("authType", "Auth type"),
        Field("webhookSecret", "Webhook secret", "secret"),
        Field("registerWebhook", "Register webhooks on repositories", "choice",
              ("", "true", "false"), hint="Empty: the engine's default (register)"),
    ),
    "DockerRegistry": (
        Field("server", "Registry server"),
        Field("user", "User"),
        Field("password", "Password", "secret"),
    ),
    "SonarQube": (
        Field("server", "Server URL"),
        Field("token", "API token", "secret"),
    ),
    "Cluster": (
        Field("clusterName", "Cluster name", hint="The ExecutionCluster's name"),
        Field("isControlCluster", "This is the control cluster (Cyclone's own)", "bool"),
        Field("namespace", "Workload namespace"),
        Field("pvc", "PVC", hint="An existing PVC; empty: Cyclone creates the tenant's"),
        Field("credential.server", "API server URL"),
        Field("credential.user", "User"),
        Field("credential.password", "Password", "secret"),
        Field("credential.bearerToken", "Bearer token", "secret"),
        Field("credential.tlsClientConfig.insecure", "Skip TLS verification", "bool"),
        Field("credential.tlsClientConfig.caData", "CA (PEM or base64)", "secret-text"),
        Field("credential.kubeConfig", "kubeconfig (YAML)", "secret-text",
              hint="Instead of the server and credentials above"),
    ),
    "General": (),
}
GENERAL_ROW = re.compile(r"^general\.(\d{1,3})\.(name|value)$")


def input_name(integration_type: str, field: Field) -> str:
    return f"{SOURCE_KEYS[integration_type]}.{field.path}"


def _put(target: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def _get(source: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(source, dict):
            return None
        source = source.get(part)
    return source


def integration_spec(integration_type: str, form: Mapping[str, str]) -> dict:
    """The `spec` of the integration a form describes. A blank credential is left out."""
    if integration_type not in SOURCE_KEYS:
        return {"type": integration_type}
    key = SOURCE_KEYS[integration_type]
    if integration_type == "General":
        return {"type": integration_type, key: general_items(form)}
    source: dict = {}
    for field in SOURCE_FIELDS[integration_type]:
        raw = form.get(input_name(integration_type, field))
        if field.kind == "bool":
            if raw:
                _put(source, field.path, True)
            continue
        value = (raw or "") if field.secret else (raw or "").strip()
        if field.secret and not value.strip():
            continue
        if not value:
            continue
        if field.kind == "choice" and field.choices[:1] == ("",):
            _put(source, field.path, value == "true")
            continue
        _put(source, field.path, value)
    return {"type": integration_type, key: source}


def general_items(form: Mapping[str, str]) -> list[dict]:
    """General's name/value rows in their order; an empty row is dropped and a blank value
    left out (kept on an update)."""
    rows: dict[int, dict] = {}
    for name, value in form.items():
        found = GENERAL_ROW.match(name)
        if found:
            rows.setdefault(int(found.group(1)), {})[found.group(2)] = value
    items = []
    for _, row in sorted(rows.items()):
        name = (row.get("name") or "").strip()
        value = row.get("value") or ""
        if not name and not value:
            continue
        item = {"name": name}
        if value:
            item["value"] = value
        items.append(item)
    return items


@dataclass(frozen=True)
class FormValues:
    """What an edit form shows: plain values, and which credentials are stored (shown as
    an empty input whose placeholder says it is unchanged)."""

    values: dict[str, str]
    stored_secrets: frozenset[str]
    general: tuple[tuple[str, bool], ...] = ()
    """(name, value stored) of each General item."""


def form_values(integration: Mapping[str, Any]) -> FormValues:
    """The form of an integration as the API answers it (credentials already masked)."""
    meta = integration.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec = integration.get("spec") or {}
    kind = str(spec.get("type") or "")
    values = {"name": str(meta.get("name") or ""),
              "alias": str(annotations.get(keys.ANNOTATION_ALIAS) or ""),
              "description": str(annotations.get(keys.ANNOTATION_DESCRIPTION) or "")}
    stored: set[str] = set()
    if kind not in SOURCE_KEYS:
        return FormValues(values, frozenset())
    source = spec.get(SOURCE_KEYS[kind])
    if kind == "General":
        items = tuple((str(i.get("name") or ""), bool(i.get("value")))
                      for i in (source or []) if isinstance(i, dict))
        return FormValues(values, frozenset(), items)
    for field in SOURCE_FIELDS[kind]:
        value = _get(source, field.path)
        name = input_name(kind, field)
        if field.secret:
            if value not in (None, ""):
                stored.add(name)
        elif field.kind == "bool":
            values[name] = "on" if value else ""
        elif value is not None:
            values[name] = ("true" if value else "false") if isinstance(value, bool) \
                else str(value)
    return FormValues(values, frozenset(stored))


def secret_summary(integration: Mapping[str, Any]) -> list[str]:
    """The names of the credentials an integration has stored (for lists), never values."""
    spec = integration.get("spec") or {}
    kind = str(spec.get("type") or "")
    if kind == "General":
        return [str(i.get("name")) for i in spec.get("general") or []
                if isinstance(i, dict) and i.get("value") == MASK]
    source = spec.get(SOURCE_KEYS.get(kind, ""), {})
    return [f.label for f in SOURCE_FIELDS.get(kind, ()) if f.secret
            and _get(source, f.path) not in (None, "")]


def metadata(form: Mapping[str, str], name: str | None = None) -> dict:
    """`metadata` from the name, alias and description inputs."""
    annotations = {}
    for field, key in (("alias", keys.ANNOTATION_ALIAS),
                       ("description", keys.ANNOTATION_DESCRIPTION)):
        value = (form.get(field) or "").strip()
        if value:
            annotations[key] = value
    meta: dict = {"annotations": annotations}
    chosen = name if name is not None else (form.get("name") or "").strip()
    if chosen:
        meta["name"] = chosen
    return meta


# -- Refusals under their fields -----------------------------------------------------------

_PATH_AT_START = re.compile(r"^(?:invalid \w+ '[^']*': )?([A-Za-z][\w.\[\]-]*): (.+)$", re.S)


def _field_for(path: str, fields: Mapping[str, str]) -> str:
    """The form input of the wire `path` (longest matching prefix in `fields`)."""
    path = re.sub(r"\[(\d+)\]", r".\1", path)
    path = re.sub(r"\[[^\]]*\]", "", path)
    best = ""
    for prefix in fields:
        if (path == prefix or path.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return fields[best] if best else FORM


def validation_problems(exc: ValidationError | Iterable[Mapping[str, Any]],
                        fields: Mapping[str, str]) -> dict[str, str]:
    """{input name: message} of a model's refusal (or of the API's rule errors, located
    under `body`); `fields` maps wire paths to inputs."""
    problems: dict[str, str] = {}
    listed = exc.errors(include_input=False, include_url=False) \
        if isinstance(exc, ValidationError) else exc
    for error in listed:
        loc = [str(p) for p in error["loc"]]
        path = ".".join(loc[1:] if loc[:1] == ["body"] else loc)
        target = _field_for(path, fields)
        message = str(error["msg"])
        problems.setdefault(target, message if target != FORM else f"{path}: {message}")
    return problems


def message_problems(message: str, fields: Mapping[str, str]) -> dict[str, str]:
    """{input name: message} of an API refusal whose message starts with a field path."""
    found = _PATH_AT_START.match(message.strip())
    if found:
        target = _field_for(found.group(1), fields)
        if target != FORM:
            return {target: found.group(2)}
    return {FORM: message}


def integration_fields(integration_type: str) -> dict[str, str]:
    """Wire path → input name for an integration form of `integration_type`."""
    table = {"metadata.name": "name", "metadata.annotations": "alias", "spec.type": "type"}
    key = SOURCE_KEYS.get(integration_type)
    if key is None:
        return table
    if integration_type == "General":
        table["spec.general"] = FORM
        for index in range(100):
            table[f"spec.general.{index}.name"] = f"general.{index}.name"
            table[f"spec.general.{index}.value"] = f"general.{index}.value"
        return table
    table[f"spec.{key}"] = FORM
    for field in SOURCE_FIELDS[integration_type]:
        table[f"spec.{key}.{field.path}"] = input_name(integration_type, field)
        table[f"{key}.{field.path}"] = input_name(integration_type, field)
    return table


# -- Stage templates and resource types: metadata and the spec as YAML -----------------------

OBJECT_FIELDS = {"metadata.name": "name", "metadata": "name", "spec": "spec"}


def spec_from_yaml(text: str) -> tuple[dict | None, str | None]:
    """(spec, None) from the spec's YAML, or (None, the one-line problem)."""
    try:
        loaded = yaml.safe_load(text or "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return None, f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
    if loaded is None:
        return None, "the spec is empty"
    if not isinstance(loaded, dict):
        return None, "the spec must be a mapping (key: value lines)"
    return loaded, None


def spec_yaml(spec: Mapping[str, Any] | None) -> str:
    return yaml.safe_dump(dict(spec or {}), sort_keys=False, default_flow_style=False,
                          allow_unicode=True)


def arguments_of(template: Mapping[str, Any]) -> list[dict]:
    """A stage template's arguments: name, default value and description."""
    inputs = (((template.get("spec") or {}).get("pod") or {}).get("inputs") or {})
    return [{"name": str(a.get("name") or ""), "value": a.get("value"),
             "description": a.get("description") or ""}
            for a in inputs.get("arguments") or [] if isinstance(a, dict)]


# -- Tenants ---------------------------------------------------------------------------------

TENANT_FIELDS = {"metadata.name": "name", "metadata": "name",
                 "spec.persistentVolumeClaim.size": "pvc.size",
                 "spec.persistentVolumeClaim.storageClass": "pvc.storageClass",
                 "spec.resourceQuota": "quota", "spec.allowedPodFeatures": "features",
                 "spec.allowLocalAddresses": "allowLocalAddresses"}


def parse_quota(text: str) -> tuple[dict[str, str], str | None]:
    """`name=quantity` lines (or commas) into a dict, or the problem with the first bad one."""
    quota: dict[str, str] = {}
    for raw in re.split(r"[\n,]", text or ""):
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or not value.strip():
            return {}, f"{line!r} is not name=quantity"
        quota[name.strip()] = value.strip()
    return quota, None


def quota_text(quota: Mapping[str, Any] | None) -> str:
    return "\n".join(f"{k}={v}" for k, v in (quota or {}).items())


def tenant_body(form: Mapping[str, str], features: Iterable[str], quota: dict[str, str],
                name: str | None = None) -> dict:
    """The Tenant body of the tenant form."""
    pvc: dict[str, str] = {}
    size = (form.get("pvc.size") or "").strip()
    if size:
        pvc["size"] = size
    storage_class = (form.get("pvc.storageClass") or "").strip()
    if storage_class:
        pvc["storageClass"] = storage_class
    chosen = name if name is not None else (form.get("name") or "").strip()
    return {"metadata": {"name": chosen},
            "spec": {"persistentVolumeClaim": pvc, "resourceQuota": quota,
                     "allowedPodFeatures": [f for f in features if f in POD_FEATURES],
                     "allowLocalAddresses": bool(form.get("allowLocalAddresses"))}}
