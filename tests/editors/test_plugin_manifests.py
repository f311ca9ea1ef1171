"""The editor plugins describe the server's settings exactly as the server reads them."""

from __future__ import annotations

import json

from budgetpass.app.config import EDITOR_CHOICES, Config
from budgetpass.app.config_sources import lsp_json

from tests.conftest import REPO

MANIFEST = REPO / "editors" / "vscode" / "package.json"
CLIENT_ONLY = ("server.", "trace.")  # how VS Code starts the server, not the server's settings


def flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def contributed() -> dict[str, dict]:
    props = json.loads(MANIFEST.read_text())["contributes"]["configuration"]["properties"]
    return {
        name.removeprefix("budgetpass."): spec
        for name, spec in props.items()
        if not name.removeprefix("budgetpass.").startswith(CLIENT_ONLY)
    }


def test_vscode_contributes_every_server_setting_with_the_servers_default():
    server = flat(lsp_json(Config()))
    vscode = contributed()
    assert sorted(vscode) == sorted(server)
    for name, default in server.items():
        assert vscode[name]["default"] == default, name
        assert vscode[name].get("description"), f"{name} has no description"


def test_vscode_enums_are_the_servers_choices():
    vscode = contributed()
    for name, choices in EDITOR_CHOICES.items():
        assert vscode[name]["enum"] == list(choices), name


def test_vscode_commands_are_contributed_and_activation_is_on_python():
    manifest = json.loads(MANIFEST.read_text())
    commands = {c["command"] for c in manifest["contributes"]["commands"]}
    assert {"budgetpass.generate", "budgetpass.candidates", "budgetpass.cancel"} <= commands
    assert manifest["activationEvents"] == ["onLanguage:python"]
