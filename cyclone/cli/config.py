"""Where the CLI finds its server, tenant and token.

Precedence: command-line flags, then `CYCLONE_SERVER`/`CYCLONE_TENANT`/`CYCLONE_TOKEN`, then
the config file (`$CYCLONE_CONFIG`, else `$XDG_CONFIG_HOME/cyclone/config.yaml`, else
`~/.config/cyclone/config.yaml`), which `cyclone up` writes with the admin token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_SERVER = "http://127.0.0.1:7099"


@dataclass(frozen=True)
class CliSettings:
    server: str = DEFAULT_SERVER
    tenant: str | None = None
    token: str | None = None


def config_path() -> Path:
    explicit = os.environ.get("CYCLONE_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "cyclone" / "config.yaml"


def load_cli_config(path: Path | None = None) -> dict:
    """The config file's settings, or {} when there is none (or it cannot be read)."""
    path = path or config_path()
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def write_cli_config(server: str, token: str, tenant: str | None = None,
                     path: Path | None = None) -> Path:
    """Write the CLI's defaults (readable only by the owner); returns the file written."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"server": server, "token": token}
    if tenant:
        settings["tenant"] = tenant
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(settings, f, default_flow_style=False)
    os.replace(tmp, path)
    return path


def resolve_settings(server: str | None = None, tenant: str | None = None,
                     token: str | None = None) -> CliSettings:
    """Flags (already merged with the environment by the caller) over the config file."""
    file_settings = load_cli_config()
    return CliSettings(
        server=(server or file_settings.get("server") or DEFAULT_SERVER).rstrip("/"),
        tenant=tenant or file_settings.get("tenant") or None,
        token=token or file_settings.get("token") or None,
    )
