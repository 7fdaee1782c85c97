"""The PVC watchdog's shell loop, run for real against a live server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from cyclone.server.watchdog import WATCHDOG_SCRIPT

from .helpers import ADMIN_TOKEN
from .live import live_server

pytestmark = pytest.mark.timeout(60)


def _usage(base_url: str) -> httpx.Response:
    return httpx.get(base_url + "/apis/v1alpha1/storage/usages",
                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


BUSYBOX = Path("/bin/busybox")
TOOLBOX_APPLETS = ("sh", "df", "du", "awk", "basename", "cat", "wget", "timeout", "sleep")


def busybox_path(tmp_path: Path) -> str:
    """A PATH of busybox applets only, as in the toolbox image (no curl)."""
    if not BUSYBOX.exists():
        pytest.skip("busybox is not installed")
    applets = tmp_path / "busybox-bin"
    applets.mkdir()
    for applet in TOOLBOX_APPLETS:
        (applets / applet).symlink_to(BUSYBOX)
    return str(applets)


@pytest.mark.parametrize("tools", ["host", "busybox"])
def test_watchdog_script_reports_folder_sizes(tmp_path: Path, tools: str):
    path = "/usr/bin:/bin" if tools == "host" else busybox_path(tmp_path)
    data = tmp_path / "pvc"
    (data / "workflowruns" / "r1").mkdir(parents=True)
    (data / "workflowruns" / "r1" / "blob").write_bytes(b"x" * 200_000)
    (data / "caches").mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(ADMIN_TOKEN)
    with live_server(tmp_path / "server", ADMIN_TOKEN) as base_url:
        assert _usage(base_url).status_code == 404
        env = {"PATH": path, "DATA_DIR": str(data), "TOKEN_FILE": str(token_file),
               "REPORT_URL": base_url + "/apis/v1alpha1/storage/usages", "INTERVAL": "0.2"}
        shell = "sh" if tools == "host" else str(Path(path) / "sh")
        process = subprocess.Popen([shell, "-c", WATCHDOG_SCRIPT], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            response = _usage(base_url)
            while response.status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
                response = _usage(base_url)
        finally:
            process.kill()
            process.wait()
    assert response.status_code == 200, process.stderr.read() if process.stderr else ""
    usage = response.json()
    assert set(usage["items"]) == {"workflowruns", "caches"}
    assert usage["items"]["workflowruns"] >= 200_000
    assert usage["total"] >= usage["used"] >= usage["items"]["workflowruns"]
