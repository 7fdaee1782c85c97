"""Where the CLI finds its server, tenant and token: named contexts, like a kubeconfig.

The config file (`$CYCLONE_CONFIG`, else `$XDG_CONFIG_HOME/cyclone/config.yaml`, else
`~/.config/cyclone/config.yaml`) holds named contexts and the current one::

    current-context: local
    contexts:
    - name: local
      server: http://127.0.0.1:7099
      tenant: system
      tokenFile: /home/me/.cyclone/admin-token     # or `token: <the token>`

A context names its token directly (`token`) or a file holding it (`tokenFile`, read on each
command, so a token rotated in that file needs no config change). The older flat file
(`server`, `token`, `tenant` at the top level) is read as one context named ``default`` and
is rewritten in the shape above only when a command writes the file.

Precedence: command-line flags, then `CYCLONE_SERVER`/`CYCLONE_TENANT`/`CYCLONE_TOKEN`, then
the context (`--context`/`CYCLONE_CONTEXT`, else the current context).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:7099"
LEGACY_CONTEXT = "default"


@dataclass(frozen=True)
class CliSettings:
    server: str = DEFAULT_SERVER
    tenant: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Context:
    """One named way to reach a server: its URL, tenant and token (or token file)."""

    name: str
    server: str
    tenant: str | None = None
    token: str | None = None
    token_file: str | None = None

    def read_token(self) -> str | None:
        """The token, read from `token_file` when the context names one."""
        if self.token_file is None:
            return self.token
        try:
            return Path(self.token_file).expanduser().read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {self.token_file} of context "
                         f"{self.name!r}: {exc.strerror or exc}") from None

    def as_yaml(self) -> dict:
        entry: dict = {"name": self.name, "server": self.server}
        for key, value in (("tenant", self.tenant), ("token", self.token),
                           ("tokenFile", self.token_file)):
            if value:
                entry[key] = value
        return entry


@dataclass
class CliConfig:
    """The whole config file: its contexts, in file order, and the current one's name."""

    contexts: list[Context] = field(default_factory=list)
    current: str | None = None

    def find(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    def current_context(self) -> Context | None:
        return self.find(self.current) if self.current else None

    def upsert(self, context: Context) -> None:
        """Add `context`, or replace the one of the same name in place."""
        for index, existing in enumerate(self.contexts):
            if existing.name == context.name:
                self.contexts[index] = context
                return
        self.contexts.append(context)

    def remove(self, name: str) -> bool:
        kept = [c for c in self.contexts if c.name != name]
        removed = len(kept) != len(self.contexts)
        self.contexts = kept
        if self.current == name:
            self.current = None
        return removed

    def as_yaml(self) -> dict:
        document: dict = {}
        if self.current:
            document["current-context"] = self.current
        document["contexts"] = [c.as_yaml() for c in self.contexts]
        return document


class ConfigError(Exception):
    """The config file, a context or a token file cannot be used; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def config_path() -> Path:
    explicit = os.environ.get("CYCLONE_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cyclone" / "config.yaml"


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None


def parse_config(document: object) -> CliConfig:
    """A config file's YAML document as a `CliConfig` (the flat form as ``default``)."""
    if document is None:
        return CliConfig()
    if not isinstance(document, dict):
        raise ValueError("it is not a mapping")
    if "contexts" not in document and "current-context" not in document:
        if not any(document.get(k) for k in ("server", "token", "tenant")):
            return CliConfig()
        legacy = Context(LEGACY_CONTEXT, _text(document.get("server")) or DEFAULT_SERVER,
                         tenant=_text(document.get("tenant")),
                         token=_text(document.get("token")))
        return CliConfig([legacy], LEGACY_CONTEXT)
    entries = document.get("contexts") or []
    if not isinstance(entries, list):
        raise ValueError("`contexts` is not a list")
    config = CliConfig(current=_text(document.get("current-context")))
    for index, entry in enumerate(entries):
        name = _text(entry.get("name")) if isinstance(entry, dict) else None
        if name is None:
            raise ValueError(f"context {index + 1} has no name")
        config.upsert(Context(name, _text(entry.get("server")) or DEFAULT_SERVER,
                              tenant=_text(entry.get("tenant")), token=_text(entry.get("token")),
                              token_file=_text(entry.get("tokenFile"))))
    return config


def read_config(path: Path | None = None) -> CliConfig:
    """The config file; empty when there is none. `ConfigError` when it is unreadable."""
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return CliConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read the CLI config {path}: {exc.strerror}") from None
    import yaml

    try:
        return parse_config(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError, AttributeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"the CLI config {path} is not valid: {reason}") from None


def write_config(config: CliConfig, path: Path | None = None) -> Path:
    """Write the config file atomically, readable only by its owner; returns its path."""
    import yaml

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config.as_yaml(), f, default_flow_style=False, sort_keys=False)
    os.replace(tmp, path)
    return path


def load_cli_config(path: Path | None = None) -> dict:
    """The current context's settings (`server`, `token`, `tenant` when set), or {} when
    there is none or the file cannot be read."""
    try:
        context = read_config(path).current_context()
        if context is None:
            return {}
        token = context.read_token()
    except ConfigError:
        return {}
    settings = {"server": context.server, "token": token, "tenant": context.tenant}
    return {key: value for key, value in settings.items() if value}


def write_cli_config(server: str, token: str, tenant: str | None = None,
                     path: Path | None = None, *, name: str = LEGACY_CONTEXT) -> Path:
    """Save `server`/`token`/`tenant` as the context `name` and make it current."""
    config = read_config(path)
    config.upsert(Context(name, server, tenant=tenant or None, token=token))
    config.current = name
    return write_config(config, path)


@dataclass(frozen=True)
class InstanceContext:
    """What `save_instance_context` did: the file, the context, whether it is current."""

    path: Path
    name: str
    current: bool


def save_instance_context(name: str, server: str, tenant: str, token_file: Path, *,
                          make_current: bool, path: Path | None = None) -> InstanceContext:
    """Record a local server as context `name`; current only when `make_current` or when
    no current context exists, so a second instance never retargets the CLI unasked."""
    config = read_config(path)
    config.upsert(Context(name, server, tenant=tenant, token_file=str(token_file)))
    if make_current or config.current_context() is None:
        config.current = name
    written = write_config(config, path)
    return InstanceContext(written, name, config.current == name)


def resolve_settings(server: str | None = None, tenant: str | None = None,
                     token: str | None = None, context: str | None = None) -> CliSettings:
    """Flags (already merged with the environment by the caller) over the context: the
    one named `context`, else the current one."""
    chosen: Context | None
    if context:
        chosen = read_config().find(context)
        if chosen is None:
            raise ConfigError(f"no context named {context!r} in {config_path()} "
                         "(see `cyclone config get-contexts`)")
    else:
        try:
            chosen = read_config().current_context()
        except ConfigError:
            if not (server and token):
                raise
            chosen = None
    chosen = chosen or Context("", DEFAULT_SERVER)
    return CliSettings(
        server=(server or chosen.server or DEFAULT_SERVER).rstrip("/"),
        tenant=tenant or chosen.tenant or None,
        token=token or chosen.read_token(),
    )
