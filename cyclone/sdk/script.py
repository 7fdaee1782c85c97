"""``@script``: a Python function as a stage that runs it with ``python3``.

The function's own source (dedented, decorators left out) is the container's script,
after a small prelude that defines `emit`, and followed by a call of the function. Its
parameters are the stage's arguments: a default becomes the argument's default, a
parameter without one is a required argument, and each value reaches the function as a
command-line word (``{{ name }}``), converted to ``int``, ``float`` or ``bool`` when the
parameter is annotated so. The function runs in the stage's container, not here: it may
use only what it imports itself, the builtins and `emit`.
"""

from __future__ import annotations

import ast
import inspect
import os
import textwrap
from collections.abc import Callable
from typing import Any, overload

from cyclone.sdk.manifest import Value
from cyclone.sdk.stage import Argument, Stage, current_workflow

DEFAULT_IMAGE = "python:3.12-alpine"
RESULTS_FILE = "/cyclone/results/__result__"

PRELUDE = '''\
import os as _os
import sys as _sys


def emit(**outputs):
    """Record results of this stage: one `key:value` line each."""
    for _key, _value in outputs.items():
        if "\\n" in str(_value):
            raise ValueError(f"output {_key}: a value must be one line")
    with open(_os.environ.get("CYCLONE_RESULTS_FILE", "@RESULTS@"), "a") as _f:
        for _key, _value in outputs.items():
            _f.write(f"{_key}:{_value}\\n")


def _convert(value, kind):
    if kind == "bool":
        return value.strip().lower() in ("1", "true", "yes", "on")
    return {"int": int, "float": float}.get(kind, str)(value)
'''.replace("@RESULTS@", RESULTS_FILE)


def emit(**outputs: object) -> None:
    """Record results of the running stage: one ``key:value`` line each in
    ``/cyclone/results/__result__`` (or ``$CYCLONE_RESULTS_FILE``), which become the
    stage's outputs (``stage.outputs.<key>`` for later stages).

    Inside a ``@script`` stage the prelude's own copy of this function is used."""
    for key, value in outputs.items():
        if "\n" in str(value):
            raise ValueError(f"output {key}: a value must be one line")
    path = os.environ.get("CYCLONE_RESULTS_FILE", RESULTS_FILE)
    with open(path, "a") as results:
        for key, value in outputs.items():
            results.write(f"{key}:{value}\n")


def function_source(func: Callable[..., Any]) -> str:
    """The source of `func`, dedented, from its ``def`` line on (decorators left out)."""
    try:
        text = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise ValueError(f"@script needs the source of {func.__name__!r}: {exc}") from None
    tree = ast.parse(text)
    node = next((n for n in tree.body
                 if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    if node is None or isinstance(node, ast.AsyncFunctionDef):
        raise ValueError(f"@script takes a plain function, not {func.__name__!r}")
    lines = text.splitlines()
    return "\n".join(lines[node.lineno - 1:node.end_lineno]) + "\n"


_CONVERTED = {int: "int", float: "float", bool: "bool", "int": "int", "float": "float",
              "bool": "bool"}


def _call(func: Callable[..., Any]) -> tuple[str, list[Argument]]:
    """The call that ends the script, and the stage arguments of `func`'s parameters."""
    arguments: list[Argument] = []
    words: list[str] = []
    for index, param in enumerate(inspect.signature(func).parameters.values()):
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            raise ValueError(f"@script {func.__name__}: parameter {param.name!r} must be a "
                             "plain positional one (no *args, **kwargs or keyword-only)")
        kind = _CONVERTED.get(param.annotation, "str")
        words.append(f"_convert(_sys.argv[{index + 1}], {kind!r})")
        if param.default is param.empty:
            arguments.append(Argument(param.name, required=True))
        else:
            default = param.default
            value = default if default is None or isinstance(default, str) else (
                str(default).lower() if isinstance(default, bool) else str(default))
            arguments.append(Argument(param.name, value))
    return f"\n\n{func.__name__}({', '.join(words)})\n", arguments


def stage_name(func_name: str) -> str:
    """A function's name as a stage name: ``build_linux`` is ``build-linux``."""
    return func_name.strip("_").replace("_", "-").lower()


class ScriptStage(Stage):
    """A stage made by ``@script``. Calling it — ``build(version=v.outputs.version)`` —
    makes a copy with those argument values (and a `name`), in the current workflow."""

    func: Callable[..., Any]

    def __call__(self, name: str | None = None, **values: Value) -> Stage:
        known = {a.name for a in self.arguments}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"stage {self.name!r} has no argument {unknown[0]!r} "
                            f"(its arguments: {', '.join(sorted(known)) or 'none'})")
        clone = self.copy(name)
        clone.arguments = [Argument(a.name, values[a.name], a.description, a.required)
                           if a.name in values else a for a in self.arguments]
        workflow = current_workflow()
        if workflow is not None:
            workflow.add(clone)
        return clone


@overload
def script(func: Callable[..., Any], /) -> ScriptStage: ...


@overload
def script(*, image: str = DEFAULT_IMAGE, name: str | None = None,
           **stage: Any) -> Callable[[Callable[..., Any]], ScriptStage]: ...


def script(func: Callable[..., Any] | None = None, /, *, image: str = DEFAULT_IMAGE,
           name: str | None = None, **stage: Any
           ) -> ScriptStage | Callable[[Callable[..., Any]], ScriptStage]:
    """Turn a function into a stage that runs it with ``python3``.

    ``@script`` or ``@script(image=..., name=..., env=..., ...)`` (any `Stage` keyword
    except command, args and script). The stage is named after the function
    (underscores become dashes) unless `name` is given.
    """
    for taken in ("command", "args", "script", "arguments"):
        if taken in stage:
            raise TypeError(f"@script makes the stage's {taken} itself")

    def make(function: Callable[..., Any]) -> ScriptStage:
        call, arguments = _call(function)
        source = PRELUDE + "\n\n" + function_source(function) + call
        words = [f"{{{{ {a.name} }}}}" for a in arguments]
        made = ScriptStage(name or stage_name(function.__name__), image=image,
                           command=["python3", "-c", source, *words], arguments=arguments,
                           **stage)
        made.func = function
        made.__doc__ = function.__doc__
        return made

    return make(func) if func is not None else make

