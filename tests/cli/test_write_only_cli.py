"""The CLI shows what the server answers: credentials masked; apply refuses unknown fields."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from cyclone.api.credentials import MASK
from cyclone.kube import kinds

INTEGRATION = """\
kind: Integration
metadata:
  name: {name}
spec:
  type: SCM
  scm:
    type: GitHub
    server: https://github.com
    token: {token}
"""


def _stored_token(live_server, name: str) -> str:
    secret = live_server.call(live_server.cluster.get(kinds.SECRET, name, "cyclone-system"))
    return json.loads(base64.b64decode(secret["data"]["integration"]))["scm"]["token"]


def test_get_shows_masks_and_reapplying_the_output_keeps_the_secret(cyclone, live_server,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / "gh.yaml"
    path.write_text(INTEGRATION.format(name="gh-mask", token="ghp_cli_secret_1"))
    assert cyclone("apply", "-f", str(path)).exit_code == 0
    for output in ("yaml", "json"):
        shown = cyclone("get", "integrations", "gh-mask", "-o", output).stdout
        assert "ghp_cli_secret_1" not in shown and MASK in shown
    exported = tmp_path / "exported.yaml"
    exported.write_text(cyclone("get", "integrations", "gh-mask", "-o", "yaml").stdout)
    applied = cyclone("apply", "-f", str(exported))
    assert applied.exit_code == 0, applied.output
    assert _stored_token(live_server, "gh-mask") == "ghp_cli_secret_1"


def test_apply_refuses_an_unknown_integration_field_by_its_path(cyclone, tmp_path: Path
                                                                ) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(INTEGRATION.format(name="gh-bad", token="t") + "    privateKey: k\n")
    result = cyclone("apply", "-f", str(path))
    assert result.exit_code != 0
    assert "spec.scm.privateKey" in result.stderr
