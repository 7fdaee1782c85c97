"""Connection settings for a real API server, read with lightkube's configuration loader.

Three sources: a kubeconfig file (or document), the in-cluster service account, and the
ExecutionCluster `spec.credential` shape (server, bearerToken, user/password,
tlsClientConfig{insecure, caFile, caData}, kubeConfig).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import yaml
from lightkube.config import kubeconfig as lk_kubeconfig
from lightkube.config import models as lk_models
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from cyclone.kube.errors import Invalid

SingleConfig = lk_kubeconfig.SingleConfig


def yaml_problem(exc: yaml.YAMLError) -> str:
    """Where a kubeconfig is not valid YAML, by line and column only: the parser's own
    message quotes the document around the error, which may be a token or a key."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return "not valid YAML"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}"


def config_from_kubeconfig(path: str | Path, context: str | None = None) -> SingleConfig:
    try:
        config = lk_kubeconfig.KubeConfig.from_file(path).get(context_name=context)
    except yaml.YAMLError as exc:
        raise Invalid(f"kubeconfig {path}: {yaml_problem(exc)}") from exc
    except (LightkubeConfigError, KeyError, OSError) as exc:
        raise Invalid(f"kubeconfig {path}: {exc}") from exc
    assert config is not None
    return config


def config_from_kubeconfig_text(text: str | dict, context: str | None = None) -> SingleConfig:
    """A kubeconfig given as YAML text or as the parsed document (as ExecutionCluster
    manifests carry it: `spec.credential.kubeConfig` is an object)."""
    try:
        document = yaml.safe_load(text) if isinstance(text, str) else text
        if not isinstance(document, dict):
            raise Invalid("kubeConfig is not a YAML mapping")
        config = lk_kubeconfig.KubeConfig.from_dict(document).get(context_name=context)
    except yaml.YAMLError as exc:
        raise Invalid(f"kubeConfig: {yaml_problem(exc)}") from exc
    except (LightkubeConfigError, KeyError, TypeError) as exc:
        raise Invalid(f"kubeConfig: {exc}") from exc
    assert config is not None
    return config


def config_in_cluster(service_account_dir: str | Path | None = None) -> SingleConfig:
    """The pod's service account (token re-read when rotated) and KUBERNETES_SERVICE_*."""
    directory = service_account_dir or lk_kubeconfig.SERVICE_ACCOUNT
    try:
        config = lk_kubeconfig.KubeConfig.from_service_account(directory).get()
    except (LightkubeConfigError, KeyError, OSError) as exc:
        raise Invalid(f"in-cluster configuration unavailable: {exc}") from exc
    assert config is not None
    return config


def _ca_data_base64(ca_data: str) -> str:
    """caData as base64 (how Kubernetes serialises []byte); PEM text is accepted too."""
    text = ca_data.strip()
    if text.startswith("-----BEGIN"):
        return base64.b64encode(ca_data.encode()).decode()
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise Invalid("tlsClientConfig.caData is neither base64 nor PEM") from exc
    return text


def config_from_credential(credential: dict) -> SingleConfig:
    """The configuration an ExecutionCluster `spec.credential` describes."""
    if credential.get("kubeConfig"):
        return config_from_kubeconfig_text(credential["kubeConfig"])
    server = credential.get("server")
    if not server:
        raise Invalid("credential needs either kubeConfig or server")
    tls = credential.get("tlsClientConfig") or {}
    cluster = lk_models.Cluster(
        server=str(server),
        certificate_auth=tls.get("caFile") or None,
        certificate_auth_data=_ca_data_base64(tls["caData"]) if tls.get("caData") else None,
        insecure=bool(tls.get("insecure", False)),
    )
    user = lk_models.User(
        token=credential.get("bearerToken") or None,
        username=credential.get("user") or None,
        password=credential.get("password") or None,
    )
    config = lk_kubeconfig.KubeConfig.from_one(cluster=cluster, user=user).get()
    assert config is not None
    return config
