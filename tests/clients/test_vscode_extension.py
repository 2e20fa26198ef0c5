"""The VS Code extension builds from a clean copy (`npm ci && npm run compile`: one bundled
`out/extension.js`) and packages (`npx @vscode/vsce package`) into a small `.vsix` without
warnings; its manifest lists the server's commands and F5 has a launch configuration."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.lsp.server import create_server

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "clients" / "vscode"
NPM = shutil.which("npm")
NPX = shutil.which("npx")

# What the bundle may still load at run time: VS Code's API and Node's own modules.
NODE_BUILTINS = {"child_process", "crypto", "fs", "net", "os", "path", "util", "events", "url"}


def run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(NPM is None or NPX is None, reason="npm is not on PATH")
def test_extension_bundles_and_packages(tmp_path: Path) -> None:
    copy = tmp_path / "vscode"
    shutil.copytree(EXTENSION, copy, ignore=shutil.ignore_patterns("node_modules", "out", "*.vsix"))
    assert NPM is not None and NPX is not None
    run([NPM, "ci", "--no-audit", "--no-fund"], copy)
    run([NPM, "run", "compile"], copy)

    bundled = (copy / "out" / "extension.js").read_text()
    assert re.search(r"\bactivate\b", bundled) and "LanguageClient" in bundled
    loaded = set(re.findall(r"""\brequire\(["']([^"']+)["']\)""", bundled))
    assert loaded <= {"vscode"} | NODE_BUILTINS, loaded  # vscode-languageclient is inside

    vsix = tmp_path / "opensesame.vsix"
    output = run([NPM, "run", "vsix", "--", "--out", str(vsix)], copy)
    assert "WARNING" not in output, output  # LICENSE, bundling
    with zipfile.ZipFile(vsix) as archive:
        names = archive.namelist()
        packaged = archive.read("extension/out/extension.js").decode()
    assert len(names) <= 10, names
    assert {"extension/package.json", "extension/LICENSE.txt", "extension/readme.md"} <= set(names)
    assert not [n for n in names if "node_modules" in n or n.endswith((".ts", ".map"))], names
    assert "LanguageClient" in packaged


def test_manifest_lists_the_servers_commands() -> None:
    """Every `workspace/executeCommand` the server offers is in the Command Palette."""
    manifest = json.loads((EXTENSION / "package.json").read_text())
    contributed = {c["command"] for c in manifest["contributes"]["commands"]}
    server = create_server(Service(Settings()))
    assert set(server.protocol.fm.commands) <= contributed
    licence = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert manifest["license"] == licence  # one SPDX expression, one text
    assert (EXTENSION / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert (EXTENSION / "LICENSE").read_text().startswith(f"{licence} License")


def test_f5_runs_the_extension() -> None:
    """The README's "press F5": a launch configuration that builds first."""
    text = (EXTENSION / ".vscode" / "launch.json").read_text()
    launch = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))
    (config,) = launch["configurations"]
    assert config["type"] == "extensionHost"
    assert "--extensionDevelopmentPath=${workspaceFolder}" in config["args"]
    tasks = json.loads((EXTENSION / ".vscode" / "tasks.json").read_text())
    labels = {t.get("label") for t in tasks["tasks"]}
    assert config["preLaunchTask"] in labels


def test_packages_are_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "*.vsix" in ignored
