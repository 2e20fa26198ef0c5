"""The VS Code extension builds from a clean copy: `npm ci && npm run compile`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "clients" / "vscode"
NPM = shutil.which("npm")


@pytest.mark.skipif(NPM is None, reason="npm is not on PATH")
def test_extension_compiles(tmp_path: Path) -> None:
    copy = tmp_path / "vscode"
    shutil.copytree(EXTENSION, copy, ignore=shutil.ignore_patterns("node_modules", "out"))
    assert NPM is not None
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "compile"]):
        done = subprocess.run(
            [NPM, *step], cwd=copy, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    compiled = (copy / "out" / "extension.js").read_text()
    assert "exports.activate" in compiled and "vscode-languageclient/node" in compiled
