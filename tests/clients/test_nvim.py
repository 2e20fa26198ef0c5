"""A real headless Neovim starts the language server with the clients/nvim setup, opens a
`.http` file and receives the expected top completion."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NVIM = shutil.which("nvim")

pytestmark = pytest.mark.skipif(
    NVIM is None, reason="nvim is not on PATH (CI installs Debian's neovim package)"
)

HTTP = """\
### Create a pet
POST /v1/pets

### Upload a photo of the pet
POST \n"""


def test_neovim_gets_the_top_completion(tmp_path: Path, fixtures: Path) -> None:
    document = tmp_path / "project" / "pets.http"
    document.parent.mkdir()
    document.write_text(HTTP)
    out = tmp_path / "out.txt"
    command = [
        sys.executable,
        "-m",
        "opensesame_predictor",
        "lsp",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
    ]
    env = {
        **os.environ,
        "OPENSESAME_OUT": str(out),
        "OPENSESAME_NVIM_LUA": str(ROOT / "clients" / "nvim" / "lua"),
        "OPENSESAME_CMD": json.dumps(command),
        "OPENSESAME_FILE": str(document),
        "OPENSESAME_LINE": "4",
        "OPENSESAME_CHARACTER": "5",
    }
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / "xdg" / name.lower())
    script = ROOT / "tests" / "clients" / "nvim_completion.lua"
    assert NVIM is not None
    finished = subprocess.run(
        [NVIM, "--headless", "-u", "NONE", "-i", "NONE", "-n", "-c", f"luafile {script}"],
        env=env,
        cwd=document.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert out.exists(), finished.stderr
    label, new_text, operations = out.read_text().splitlines()
    assert label == "/pets/{petId}/photos"
    assert new_text == "/pets/{petId}/photos"  # Neovim 0.7 has no snippet support: plain text
    assert operations == "13"
