"""The ``loyaltykit`` command line: version and plugin listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import loyaltykit
from loyaltykit.cli import build_app
from loyaltykit.plugins import PluginHost

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(build_app(), ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"loyaltykit {loyaltykit.__version__}"


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(build_app(), [])
    assert "plugins" in result.output


def test_plugins_lists_hand_registered_and_hides_builtins(plugin_host: PluginHost) -> None:
    class Mine:
        @loyaltykit.hookimpl
        def loyaltykit_register_tier_rules(self, register: object) -> None:
            register("by-visits-test", dict, description="test rule")  # type: ignore[operator]

    plugin_host.register(Mine(), name="mine")
    result = runner.invoke(build_app(), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [p["name"] for p in listed] == ["mine"]
    assert listed[0]["provides"] == [{"kind": "tier_rule", "name": "by-visits-test"}]
    assert listed[0]["source"] == "registered"


def test_plugins_all_includes_builtins(plugin_host: PluginHost) -> None:
    from loyaltykit.default_plugins import DEFAULT_PLUGINS

    result = runner.invoke(build_app(), ["plugins", "--all", "--json"])
    assert result.exit_code == 0, result.output
    names = [p["name"] for p in json.loads(result.output)]
    assert set(DEFAULT_PLUGINS) <= set(names)
    table = runner.invoke(build_app(), ["plugins", "--all"], env={"COLUMNS": "250"})
    assert table.exit_code == 0
    for name in DEFAULT_PLUGINS:
        assert name.rsplit(".", 1)[-1] in table.output


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loyaltykit", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("loyaltykit ")


@pytest.mark.parametrize("argv", [["plugins", "--bogus"], ["no-such-command"]])
def test_usage_errors_exit_2(argv: list[str]) -> None:
    result = runner.invoke(build_app(), argv)
    assert result.exit_code == 2


def test_minimal_cli_without_the_extra(
    capsys: pytest.CaptureFixture[str], plugin_host: PluginHost
) -> None:
    from loyaltykit.cli import _minimal

    assert _minimal.run(["plugins", "--all", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    from loyaltykit.default_plugins import DEFAULT_PLUGINS

    assert {p["name"] for p in listed} >= set(DEFAULT_PLUGINS)
    assert _minimal.run(["plugins", "--all"]) == 0
    out = capsys.readouterr().out
    assert "[built-in]" in out
    assert _minimal.run(["analyze", "x.csv"]) == 2
    assert "pip install 'loyaltykit[cli]'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        _minimal.run(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"loyaltykit {loyaltykit.__version__}"


def test_main_falls_back_to_the_minimal_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import loyaltykit.cli as cli

    monkeypatch.setattr(cli, "cli_extra_installed", lambda: False)
    with pytest.raises(SystemExit) as info:
        cli.main(["plugins"])
    assert info.value.code == 0
    assert "no plugins installed" in capsys.readouterr().out
