"""A Cluster integration's credential as an ExecutionCluster `spec.credential` holds it."""

from __future__ import annotations

import copy

import yaml

from cyclone.kube import errors


def _without_empty(value: dict) -> dict:
    """Fields left unset (None, "") dropped, since the CRD schema types each field."""
    cleaned = {}
    for key, item in value.items():
        if isinstance(item, dict) and key != "kubeConfig":
            item = _without_empty(item)
        if item is None or item == "" or item == {}:
            continue
        cleaned[key] = item
    return cleaned


def execution_credential(credential: dict) -> dict:
    """An integration's credential as ExecutionCluster `spec.credential` holds it: a
    kubeconfig given as YAML text becomes the object the CRD schema asks for."""
    credential = _without_empty(copy.deepcopy(credential))
    kubeconfig = credential.get("kubeConfig")
    if isinstance(kubeconfig, str):
        try:
            document = yaml.safe_load(kubeconfig)
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"credential.kubeConfig is not YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise errors.BadRequest("credential.kubeConfig is not a kubeconfig mapping")
        credential["kubeConfig"] = document
    return credential
