"""Cyclone installed with Helm on a real node, as deploy/README.md tells an operator to.

`readme_install_block()` is the ```sh block after `<!-- helm-install -->` in deploy/README.md
(`readme_ci_block()` the one after `<!-- ci-example -->`); `ReadmeShell` runs such a block
from the repository root as an operator's shell would, with only `KUBECONFIG` and a home of
the test's own set (the block itself puts the CLI, helm and kubectl on `PATH`) and the test's
values file appended to its `helm install` line. `Release`
then drives helm and kubectl against the plane, finds the engine's leader, reads the admin
token from the Secret the server created, and gathers what explains a failure (helm status,
pods, events, container logs). `InstalledServer` is the CLI and REST API of the installed
server, reached through its Service ClusterIP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cyclone.devcluster.plane import default_bin_dir
from support.control_plane import unavailable
from support.realnode_kit import ServerClient

REPO = Path(__file__).parents[2]
README = REPO / "deploy" / "README.md"
INSTALL_MARK = "<!-- helm-install -->"
CI_EXAMPLE_MARK = "<!-- ci-example -->"
RELEASE = "cyclone"
NAMESPACE = "cyclone"
ENGINE_LEASE = "cyclone-engine"
COMPONENT_LABEL = "app.kubernetes.io/component"


def helm_binary() -> Path:
    return default_bin_dir() / "helm"


def require_helm() -> None:
    """Skip (or fail under CYCLONE_REQUIRE_K8S=1) without helm and kubectl in the cache."""
    missing = [p.name for p in (helm_binary(), default_bin_dir() / "kubectl")
               if not os.access(p, os.X_OK)]
    if missing:
        unavailable(f"{', '.join(missing)} missing from {default_bin_dir()}; run `make helm` "
                    "and `bash scripts/control-plane/build.sh`")


def readme_block(mark: str, readme: Path = README) -> str:
    """The first ```sh block after the line `mark` of deploy/README.md."""
    text = readme.read_text()
    if mark not in text:
        raise AssertionError(f"{readme} has no {mark} line")
    after = text.split(mark, 1)[1]
    if "```sh\n" not in after:
        raise AssertionError(f"no ```sh block after {mark} in {readme}")
    return after.split("```sh\n", 1)[1].split("\n```", 1)[0] + "\n"


def readme_install_block(readme: Path = README) -> str:
    return readme_block(INSTALL_MARK, readme)


def readme_ci_block(readme: Path = README) -> str:
    return readme_block(CI_EXAMPLE_MARK, readme)


def with_values_file(block: str, values: Path) -> str:
    """`block` with ` -f VALUES` at the end of its `helm install` command (after the last of
    its continuation lines)."""
    lines = block.splitlines()
    starts = [i for i, line in enumerate(lines) if line.lstrip().startswith("helm install")]
    if len(starts) != 1:
        raise AssertionError(f"the install block has {len(starts)} `helm install` lines:\n"
                             f"{block}")
    end = starts[0]
    while lines[end].rstrip().endswith("\\"):
        end += 1
    lines[end] = f"{lines[end].rstrip()} -f {values}"
    return "\n".join(lines) + "\n"


def tool_env(kubeconfig: Path, home: Path) -> dict[str, str]:
    """The environment of an operator's shell: the plane's kubeconfig and a home directory
    (and so a CLI config, helm's and kubectl's caches) of the test's own, whose
    `.cache/cyclone/k8s/bin` is the binary cache `make helm` filled. PATH is this process's
    without the venv and the cache: the README's block must put them there itself."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CYCLONE_SERVER", "CYCLONE_TENANT", "CYCLONE_TOKEN", "CYCLONE_CONTEXT",
                        "CYCLONE_CONFIG", "HELM_NAMESPACE", "XDG_CACHE_HOME",
                        "XDG_CONFIG_HOME", "XDG_DATA_HOME", "VIRTUAL_ENV",
                        "CYCLONE_K8S_BIN", "CYCLONE_K8S_CACHE")}
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    cached = home / ".cache" / "cyclone" / "k8s" / "bin"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.symlink_to(default_bin_dir().resolve(), target_is_directory=True)
    env["HOME"] = str(home)
    env["KUBECONFIG"] = str(kubeconfig)
    hidden = {default_bin_dir().resolve(), (REPO / ".venv" / "bin").resolve(),
              Path(sys.executable).parent.resolve()}
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep)
        if entry and Path(entry).resolve() not in hidden)
    return env


@dataclass
class ReadmeShell:
    """A block of the README run by `bash -e -o pipefail` from the repository root, in a
    session of its own: what it leaves running in the background (a port-forward, an HTTP
    server) is ended with `stop()`."""

    block: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def run(self, timeout: float) -> int:
        script = self.log_path.with_suffix(".sh")
        script.write_text(self.block)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                ["bash", "-e", "-o", "pipefail", str(script)], cwd=REPO, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return -1

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)


@dataclass
class Release:
    """The release `cyclone` in namespace `cyclone` of a plane, through helm and kubectl."""

    kubeconfig: Path
    workdir: Path
    containerd_socket: str
    name: str = RELEASE
    namespace: str = NAMESPACE
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = tool_env(self.kubeconfig, self.workdir / "home")

    def tool(self, binary: str, *args: str, timeout: float = 120,
             check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([str(default_bin_dir() / binary), *args], cwd=REPO,
                                env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{binary} {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}\n{self.diagnostics()}")
        return result

    def helm(self, *args: str, timeout: float = 300) -> str:
        return self.tool("helm", *args, "-n", self.namespace, timeout=timeout).stdout

    def kubectl(self, *args: str, check: bool = True) -> str:
        return self.tool("kubectl", *args, check=check).stdout

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def pods(self, component: str) -> list[dict]:
        return self.kubectl_json("-n", self.namespace, "get", "pods", "-l",
                                 f"{COMPONENT_LABEL}={component}")["items"]

    def ready_pods(self, component: str) -> list[str]:
        """Names of the component's pods that are Ready and not being deleted."""
        return [p["metadata"]["name"] for p in self.pods(component)
                if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True"
                        for c in (p.get("status") or {}).get("conditions") or [])]

    def wait_ready(self, component: str, count: int, timeout: float = 180) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            ready = self.ready_pods(component)
            if len(ready) == count:
                return ready
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} Ready {component} pods not within {timeout:.0f}s "
                                     f"(Ready: {ready})\n{self.diagnostics()}")
            time.sleep(0.5)

    def leader(self) -> str:
        """The engine pod holding the Lease (its holderIdentity is `<pod name>_<nonce>`)."""
        lease = self.kubectl_json("-n", self.namespace, "get", "lease", ENGINE_LEASE)
        holder = (lease.get("spec") or {}).get("holderIdentity") or ""
        return holder.rpartition("_")[0] or holder

    def kill_pod(self, name: str) -> None:
        """SIGKILL every container of the pod through containerd (nothing of it gets to
        release anything), then delete the pod at once so no restart of it comes back."""
        pod = self.kubectl_json("-n", self.namespace, "get", "pod", name)
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            container = (status.get("containerID") or "").removeprefix("containerd://")
            if container:
                result = subprocess.run(
                    ["ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io",
                     "tasks", "kill", "--signal", "SIGKILL", container],
                    capture_output=True, text=True, timeout=30)
                assert result.returncode == 0, f"ctr tasks kill {container}: {result.stderr}"
        self.kubectl("-n", self.namespace, "delete", "pod", name, "--grace-period=0",
                     "--force", "--wait=false")

    def config_map(self, name: str) -> dict[str, str]:
        return self.kubectl_json("-n", self.namespace, "get", "configmap", name).get(
            "data") or {}

    def admin_token(self, secret: str = "cyclone-admin-token", key: str = "token") -> str:
        """The admin token from the Secret the server created (never printed)."""
        import base64

        data = self.kubectl_json("-n", self.namespace, "get", "secret", secret).get(
            "data") or {}
        assert key in data, f"Secret {secret} has no key {key} (keys: {sorted(data)})"
        return base64.b64decode(data[key]).decode().strip()

    def service_url(self, service: str, port_name: str = "http") -> str:
        service_object = self.kubectl_json("-n", self.namespace, "get", "service", service)
        spec = service_object["spec"]
        port = next((p["port"] for p in spec["ports"] if p.get("name") == port_name),
                    spec["ports"][0]["port"])
        return f"http://{spec['clusterIP']}:{port}"

    def diagnostics(self) -> str:
        """helm status, every pod of the cluster, the release namespace's events and the
        last log lines of each container of its pods (and of their previous runs)."""
        def quietly(binary: str, *args: str) -> str:
            try:
                result = self.tool(binary, *args, timeout=60, check=False)
            except subprocess.TimeoutExpired:
                return f"({binary} {' '.join(args)} timed out)"
            return (result.stdout + result.stderr).strip()

        parts = [
            ("helm status", quietly("helm", "status", self.name, "-n", self.namespace)),
            ("pods", quietly("kubectl", "get", "pods", "-A", "-o", "wide")),
            ("events", quietly("kubectl", "-n", self.namespace, "get", "events",
                               "--sort-by=.lastTimestamp")),
            ("lease", quietly("kubectl", "-n", self.namespace, "get", "lease", "-o",
                              "custom-columns=NAME:.metadata.name,"
                              "HOLDER:.spec.holderIdentity,RENEWED:.spec.renewTime")),
        ]
        listed = quietly("kubectl", "-n", self.namespace, "get", "pods", "-o",
                         "jsonpath={range .items[*]}{.metadata.name}{'\\n'}{end}")
        for pod in listed.split():
            parts.append((f"logs {pod}", quietly("kubectl", "-n", self.namespace, "logs", pod,
                                                 "--all-containers", "--tail=40")))
            previous = quietly("kubectl", "-n", self.namespace, "logs", pod,
                               "--all-containers", "--previous", "--tail=20")
            if "previous terminated container" not in previous:
                parts.append((f"previous logs {pod}", previous))
        return "\n".join(f"--- {title} ---\n{text}" for title, text in parts)


@dataclass
class InstalledServer(ServerClient):
    """The installed server's REST API and the `cyclone` CLI pointed at it (the admin
    token through the environment, never on a command line)."""

    url: str
    token: str
    cli_config: Path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("CYCLONE_TENANT", "CYCLONE_CONTEXT")}
        env.update(CYCLONE_SERVER=self.url, CYCLONE_TOKEN=self.token,
                   CYCLONE_CONFIG=str(self.cli_config))
        return env

    def healthy(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/healthcheck", timeout=2).status_code == 200
        return False

