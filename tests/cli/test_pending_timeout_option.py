"""`--pod-pending-timeout` of `cyclone up` and `cyclone engine` sets the engine's
`pod_pending_timeout_seconds`, over the configuration file's."""

from __future__ import annotations

import json

import typer.main
from typer.testing import CliRunner

from cyclone.cli.main import app
from cyclone.components import ComponentError, engine_overrides, load_engine_config
from cyclone.up import UpOptions, engine_config


def engine_params(*args: str) -> dict:
    command = typer.main.get_command(app).commands["engine"]  # type: ignore[attr-defined]
    return command.make_context("engine", list(args)).params


def test_the_engine_option_overrides_the_configuration_file(tmp_path):
    config = tmp_path / "engine.yaml"
    config.write_text("pod_pending_timeout_seconds: 120\n")
    assert load_engine_config(str(config)).pod_pending_timeout_seconds == 120
    params = engine_params("--config", str(config), "--pod-pending-timeout", "0")
    overrides = engine_overrides(None, (), pod_pending_timeout=params["pod_pending_timeout"])
    assert load_engine_config(str(config), overrides).pod_pending_timeout_seconds == 0
    without = engine_params("--config", str(config))
    assert engine_overrides(None, (), pod_pending_timeout=without["pod_pending_timeout"]) == {}
    assert load_engine_config(None).pod_pending_timeout_seconds == 300


def test_up_takes_the_option_over_engine_json(tmp_path):
    (tmp_path / "engine.json").write_text(json.dumps({"pod_pending_timeout_seconds": 45}))
    options = UpOptions(data_dir=str(tmp_path))
    assert engine_config(tmp_path, options).pod_pending_timeout_seconds == 45
    options.pod_pending_timeout = 10
    assert engine_config(tmp_path, options).pod_pending_timeout_seconds == 10


def test_a_negative_timeout_is_refused_naming_the_option():
    result = CliRunner().invoke(app, ["engine", "--pod-pending-timeout", "-1"])
    assert result.exit_code == 2
    assert "--pod-pending-timeout" in result.output


def test_an_infinite_or_huge_timeout_is_refused_in_one_line_naming_the_option():
    for command in ("engine", "up"):
        for value in ("inf", "1e12"):
            result = CliRunner().invoke(app, [command, "--pod-pending-timeout", value])
            assert result.exit_code == 2, (command, value, result.output)
            assert "--pod-pending-timeout" in result.output
            assert "Traceback" not in result.output


def test_a_configuration_file_with_a_huge_timeout_is_one_clear_error(tmp_path):
    config = tmp_path / "engine.json"
    config.write_text(json.dumps({"pod_pending_timeout_seconds": 1e12}))
    try:
        load_engine_config(str(config))
    except ComponentError as exc:
        message = str(exc)
    else:
        raise AssertionError("a timeout of 1e12 seconds was accepted")
    assert "pod_pending_timeout_seconds" in message
    assert "\n" not in message
    assert load_engine_config(None, {"pod_pending_timeout_seconds": 2592000}) \
        .pod_pending_timeout_seconds == 2592000
