"""Parameter rendering of a stage's PodSpec.

What is replaced, in every string of the PodSpec (keys are left alone), in one pass so a
substituted value is never rendered again:

- ``{{ arg }}`` and ``{{{ arg }}}``: the stage argument ``arg``. Both insert the value as
  is (no HTML escaping: values end up in commands, not in HTML). A name that is not an
  argument is left untouched, so shell or Go-template text such as ``{{.Id}}`` survives.
- ``${variables.<name>}``: a global variable (the run's, with the workflow's as defaults).
- ``${secrets.<ns>:<secret>/<path>/<path>...}``: a value read from a Secret through the
  lookup the caller passes in; the first path names a key of the Secret (``data.<key>``,
  ``$.data.<key>`` or ``data['<key>']``; the key may hold dots, ``stringData`` is read too,
  ``data`` values are base64-decoded) or any other dotted path of the object; each further
  path parses the value found so far as JSON and walks it (dotted).
- ``${stages.<stage>.outputs.<key>}``: an output of a finished upstream stage.
- ``$(random:<n>)``: ``n`` random letters and digits drawn from the given ``rng``.
- ``$(timenow:<format>)``: the given ``now`` (see ``timelayout.format_time``).

References are described as whole values in Cyclone v1 (``value: ${variables.x}``); they
are also replaced where they appear inside a longer string.

Arguments: defaults from the stage's ``spec.pod.inputs.arguments``, overridden by the run's
``spec.stages[].parameters``; their values are rendered the same way (without arguments).
A required argument without a value is a ``RenderError`` naming the stage and argument.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cyclone.api.references import OUTPUT_REFERENCE
from cyclone.engine.core.errors import StagePodError
from cyclone.engine.core.timelayout import format_time

SecretLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, secret name) → the Secret object (``data``/``stringData``), or None."""

_ALNUM = string.ascii_letters + string.digits
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_PATTERN = re.compile(
    r"\{\{\{\s*(?P<triple>" + _NAME + r")\s*\}\}\}"
    r"|\{\{\s*(?P<double>" + _NAME + r")\s*\}\}"
    r"|\$\{(?P<ref>[^{}]+)\}"
    r"|\$\((?P<gen>random|timenow):(?P<arg>[^()]*)\)"
)
_SECRET_KEY = re.compile(
    r"(?P<section>data|stringData)(?:\.(?P<dotted>.+)|\[['\"](?P<bracket>.+)['\"]\])"
)


class RenderError(StagePodError):
    """A value of a stage cannot be rendered; the message names the stage and the value."""


@dataclass
class RenderContext:
    """Everything rendering may read; nothing else is consulted."""

    stage: str
    now: datetime
    rng: random.Random
    arguments: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    secret_lookup: SecretLookup | None = None


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def secret_lookup_from(secrets: Mapping[tuple[str, str], Mapping[str, Any]]) -> SecretLookup:
    """A lookup over Secrets already read, keyed by (namespace, name)."""

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        return secrets.get((namespace, name))

    return lookup


def secret_references(values: Iterable[str]) -> set[tuple[str, str]]:
    """The (namespace, secret) pairs referenced by some strings, so a caller can read them."""
    found: set[tuple[str, str]] = set()
    for value in values:
        for match in _PATTERN.finditer(value):
            ref = match.group("ref")
            if ref and ref.startswith("secrets."):
                target = ref[len("secrets.") :].split("/", 1)[0]
                namespace, _, name = target.partition(":")
                if name:
                    found.add((namespace, name))
    return found


def _walk(value: Any, path: str) -> Any:
    path = path.strip()
    if path.startswith("$"):
        path = path[1:]
    for part in (p for p in path.split(".") if p):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(part)
    return value


def _secret_entry(secret: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in a Secret; ``data.<key>`` is decoded, keys may hold dots."""
    match = _SECRET_KEY.fullmatch(path)
    if match is not None:
        section = match.group("section")
        key = match.group("dotted") or match.group("bracket")
        string_data = secret.get("stringData") or {}
        if key in string_data:
            return string_data[key]
        data = secret.get("data") or {}
        if section == "data" and key in data:
            return base64.b64decode(data[key], validate=True).decode()
        raise KeyError(key)
    return _walk(secret, path)


def _secret_value(ref: str, ctx: RenderContext) -> str:
    target, _, path_text = ref.partition("/")
    namespace, _, name = target.partition(":")
    if not name or not path_text:
        raise RenderError(ctx.stage, f"malformed secret reference ${{secrets.{ref}}}")
    if ctx.secret_lookup is None:
        raise RenderError(ctx.stage, f"no secret lookup for ${{secrets.{ref}}}")
    secret = ctx.secret_lookup(namespace, name)
    if secret is None:
        raise RenderError(ctx.stage, f'secret "{namespace}/{name}" not found')
    paths = path_text.split("/")
    first = paths[0].lstrip("$").lstrip(".")
    try:
        value = _secret_entry(secret, first)
        for path in paths[1:]:
            if not path:
                continue
            value = _walk(json.loads(value) if isinstance(value, str) else value, path)
    except (KeyError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise RenderError(
            ctx.stage, f"cannot resolve ${{secrets.{ref}}}: {exc}"
        ) from exc
    if isinstance(value, (Mapping, list)):
        return json.dumps(value)
    return str(value)


def _reference(ref: str, ctx: RenderContext) -> str:
    kind, _, rest = ref.partition(".")
    if kind == "variables":
        if rest not in ctx.variables:
            raise RenderError(ctx.stage, f'unknown variable "{rest}"')
        return render_string(str(ctx.variables[rest]), _without_arguments(ctx))
    if kind == "secrets":
        return _secret_value(rest, ctx)
    if kind == "stages":
        match = OUTPUT_REFERENCE.fullmatch("${" + ref + "}")
        if match is None:
            raise RenderError(ctx.stage, f"malformed reference ${{{ref}}}")
        stage, key = match.group("stage"), match.group("key")
        if stage not in ctx.outputs:
            raise RenderError(ctx.stage, f'no outputs of stage "{stage}" (not finished?)')
        if key not in ctx.outputs[stage]:
            raise RenderError(ctx.stage, f'stage "{stage}" has no output "{key}"')
        return str(ctx.outputs[stage][key])
    return "${" + ref + "}"


def _generated(kind: str, arg: str, ctx: RenderContext) -> str:
    if kind == "random":
        text = arg.strip()
        if not text.isdigit():
            raise RenderError(ctx.stage, f"$(random:{arg}) needs a length")
        return "".join(ctx.rng.choice(_ALNUM) for _ in range(int(text)))
    return format_time(ctx.now, arg)


def _without_arguments(ctx: RenderContext) -> RenderContext:
    return RenderContext(
        stage=ctx.stage,
        now=ctx.now,
        rng=ctx.rng,
        variables={},
        outputs=ctx.outputs,
        secret_lookup=ctx.secret_lookup,
    )


def render_string(text: str, ctx: RenderContext) -> str:
    """One string with every placeholder and reference replaced (see module doc)."""

    def replace(match: re.Match[str]) -> str:
        arg_name = match.group("triple") or match.group("double")
        if arg_name is not None:
            if arg_name in ctx.arguments:
                return str(ctx.arguments[arg_name])
            return match.group(0)
        ref = match.group("ref")
        if ref is not None:
            return _reference(ref.strip(), ctx)
        return _generated(match.group("gen"), match.group("arg"), ctx)

    return _PATTERN.sub(replace, text)


def render_value(value: Any, ctx: RenderContext) -> Any:
    """A JSON-like value with every string rendered; a new object, the input is untouched."""
    if isinstance(value, str):
        return render_string(value, ctx)
    if isinstance(value, Mapping):
        return {key: render_value(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, ctx) for item in value]
    return value


def stage_arguments(
    stage: str,
    declared: Iterable[Any] | None,
    overrides: Iterable[Any] | None,
    ctx: RenderContext | None = None,
) -> dict[str, str]:
    """Arguments of a stage: declared defaults, overridden by the run's parameters.

    ``declared`` and ``overrides`` are ``{name, value, required}`` items (models or
    dicts). Overrides of undeclared names are kept too. With a ``ctx``, values are rendered
    (variables, secrets, outputs, generators). A required argument with no value (missing
    or empty) raises ``RenderError``.
    """
    values: dict[str, str | None] = {}
    required: set[str] = set()
    for item in declared or ():
        name = str(_get(item, "name"))
        value = _get(item, "value")
        values[name] = None if value is None else str(value)
        if _get(item, "required"):
            required.add(name)
    for item in overrides or ():
        name = str(_get(item, "name"))
        value = _get(item, "value")
        if value is not None:
            values[name] = str(value)
        else:
            values.setdefault(name, None)
    missing = [name for name in values if name in required and not values[name]]
    if missing:
        raise RenderError(stage, f'required argument "{missing[0]}" has no value')
    arguments = {name: value or "" for name, value in values.items()}
    if ctx is not None:
        plain = _without_arguments(ctx)
        plain.variables = ctx.variables
        arguments = {name: render_string(value, plain) for name, value in arguments.items()}
    return arguments


def global_variables(
    workflow_variables: Iterable[Any] | None, run_variables: Iterable[Any] | None
) -> dict[str, str]:
    """Global variables of a run: the workflow's as defaults, the run's winning."""
    merged: dict[str, str] = {}
    for item in [*(workflow_variables or ()), *(run_variables or ())]:
        value = _get(item, "value")
        merged[str(_get(item, "name"))] = "" if value is None else str(value)
    return merged


def resolve_generators(values: Mapping[str, str], now: datetime, rng: random.Random) -> dict:
    """Values with ``$(random:n)``/``$(timenow:f)`` fixed once, e.g. to store in a run."""
    ctx = RenderContext(stage="", now=now, rng=rng)

    def fix(match: re.Match[str]) -> str:
        if match.group("gen"):
            return _generated(match.group("gen"), match.group("arg"), ctx)
        return match.group(0)

    return {name: _PATTERN.sub(fix, value) for name, value in values.items()}
