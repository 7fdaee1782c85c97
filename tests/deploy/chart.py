"""Reading deploy/: its plain manifests, and the Helm chart rendered by the real `helm
template` (the binary `make helm` caches beside the control-plane binaries; without it the
chart's tests skip, or fail under CYCLONE_REQUIRE_K8S=1).

The plain manifests are the chart's defaults without what only Helm uses: the labels
`app.kubernetes.io/managed-by` and `helm.sh/chart`, and the annotations `checksum/config`
and `helm.sh/resource-policy` (`without_helm_bookkeeping`).
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import yaml
from support.control_plane import unavailable

from cyclone.devcluster.plane import default_bin_dir

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "cyclone"
HELM_ONLY_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart")
HELM_ONLY_ANNOTATIONS = ("checksum/config", "helm.sh/resource-policy")


def helm_binary() -> Path:
    helm = default_bin_dir() / "helm"
    if not os.access(helm, os.X_OK):
        unavailable(f"helm missing from {default_bin_dir()}; run `make helm`")
    return helm


def helm(*args: str, chart: Path = CHART) -> subprocess.CompletedProcess:
    """`helm ARGS CHART` without a cluster (no kubeconfig is read)."""
    return subprocess.run(
        [str(helm_binary()), *args, str(chart)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "KUBECONFIG": os.devnull, "HELM_CACHE_HOME": _helm_home("cache"),
             "HELM_CONFIG_HOME": _helm_home("config"), "HELM_DATA_HOME": _helm_home("data")})


@cache
def _helm_home(kind: str) -> str:
    """One empty Helm home per kind and test process, removed when the process ends."""
    path = tempfile.mkdtemp(prefix=f"cyclone-helm-{kind}-")
    atexit.register(shutil.rmtree, path, True)
    return path


def plain_manifest_files() -> list[Path]:
    """Every YAML file of deploy/ that is applied as it is (not the chart)."""
    return sorted(p for p in DEPLOY.rglob("*.yaml") if CHART not in p.parents)


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def chart_schema() -> dict:
    return json.loads((CHART / "values.schema.json").read_text())


def template_files() -> list[Path]:
    return sorted(p for p in (CHART / "templates").iterdir() if p.is_file())


class RenderError(Exception):
    """`helm template` refused the values; the message is helm's."""


def _template_args(overrides: dict | None, name: str, namespace: str,
                   values_dir: Path) -> list[str]:
    args = ["template", name, "--namespace", namespace]
    if overrides:
        values = values_dir / "values.yaml"
        values.write_text(yaml.safe_dump(overrides))
        args += ["-f", str(values)]
    return args


@cache
def _rendered(overrides_json: str, name: str, namespace: str) -> tuple[str, str, int]:
    with tempfile.TemporaryDirectory() as scratch:
        done = helm(*_template_args(json.loads(overrides_json), name, namespace,
                                    Path(scratch)))
    return done.stdout, done.stderr, done.returncode


def render_chart(overrides: dict | None = None, *, name: str = "cyclone",
                 namespace: str = "cyclone") -> list[dict]:
    """The objects `helm template NAME --namespace NAMESPACE -f <overrides>` renders."""
    stdout, stderr, code = _rendered(json.dumps(overrides or {}, sort_keys=True), name,
                                     namespace)
    if code != 0:
        raise RenderError(stderr.strip())
    return copy.deepcopy([doc for doc in yaml.safe_load_all(stdout) if doc])


def render_notes(overrides: dict | None = None, *, name: str = "cyclone",
                 namespace: str = "cyclone") -> str:
    """templates/NOTES.txt as `helm install` shows it: rendered through a copy of the chart
    that carries it in a ConfigMap (`helm template` leaves the notes out)."""
    with tempfile.TemporaryDirectory() as scratch:
        copied = Path(scratch) / "cyclone"
        shutil.copytree(CHART, copied)
        (copied / "templates" / "NOTES.txt").rename(copied / "notes.txt")
        (copied / "templates" / "notes-shown.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
            '{{ tpl (.Files.Get "notes.txt") . | indent 4 }}\n')
        done = helm(*_template_args(overrides, name, namespace, Path(scratch)),
                    "--show-only", "templates/notes-shown.yaml", chart=copied)
    if done.returncode != 0:
        raise RenderError(done.stderr.strip())
    return yaml.safe_load(done.stdout)["data"]["notes"]


def without_helm_bookkeeping(objects: list[dict]) -> list[dict]:
    """The objects without the labels and annotations only Helm uses."""
    stripped = copy.deepcopy(objects)
    for item in stripped:
        metas = [item["metadata"]]
        if item["kind"] == "Deployment":
            metas.append(item["spec"]["template"]["metadata"])
        for meta in metas:
            for label in HELM_ONLY_LABELS:
                (meta.get("labels") or {}).pop(label, None)
            annotations = meta.get("annotations") or {}
            for annotation in HELM_ONLY_ANNOTATIONS:
                annotations.pop(annotation, None)
            if "annotations" in meta and not annotations:
                del meta["annotations"]
    return stripped


def leaf_paths(values: dict, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths |= leaf_paths(value, f"{path}.")
        else:
            paths.add(path)
    return paths


def by_identity(objects: list[dict]) -> dict[tuple[str, str, str], dict]:
    return {
        (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
        for o in objects
    }
