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


def run_nvim(
    script: str, tmp_path: Path, document: Path, spec: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Runs tests/clients/`script` in a headless Neovim with the clients/nvim setup, the
    language server over `spec`, `document` open and OPENSESAME_OUT for the script's answer."""
    command = [sys.executable, "-m", "opensesame_predictor", "lsp", "--spec", str(spec)]
    env = {
        **os.environ,
        "OPENSESAME_OUT": str(tmp_path / "out.txt"),
        "OPENSESAME_NVIM_LUA": str(ROOT / "clients" / "nvim" / "lua"),
        "OPENSESAME_CMD": json.dumps(command),
        "OPENSESAME_FILE": str(document),
        **{f"OPENSESAME_{name.upper()}": value for name, value in variables.items()},
    }
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / "xdg" / name.lower())
    assert NVIM is not None
    return subprocess.run(
        [
            NVIM,
            "--headless",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-n",
            "-c",
            f"luafile {ROOT / 'tests' / 'clients' / script}",
        ],
        env=env,
        cwd=document.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_neovim_gets_the_top_completion(tmp_path: Path, fixtures: Path) -> None:
    document = tmp_path / "project" / "pets.http"
    document.parent.mkdir()
    document.write_text(HTTP)
    finished = run_nvim(
        "nvim_completion.lua",
        tmp_path,
        document,
        fixtures / "petstore-3.0.yaml",
        line="4",
        character="5",
    )

    out = tmp_path / "out.txt"
    assert out.exists(), finished.stderr
    label, new_text, operations = out.read_text().splitlines()
    assert label == "/pets/{petId}/photos"
    assert new_text == "/pets/{petId}/photos"  # Neovim 0.7 has no snippet support: plain text
    assert operations == "13"


ORDER = """\
### Create a pet
POST /v1/pets

### Place an order for the pet

"""


def test_omnifunc_inserts_a_whole_request_as_lines(tmp_path: Path, fixtures: Path) -> None:
    """<C-x><C-o> on an empty line offers whole requests; accepting one (Neovim's omnifunc
    inserts it through complete(), which knows no line breaks) leaves real lines in the saved
    file, not one line joined by NUL bytes."""
    document = tmp_path / "project" / "orders.http"
    document.parent.mkdir()
    document.write_text(ORDER)
    finished = run_nvim(
        "nvim_omnifunc.lua", tmp_path, document, fixtures / "petstore-3.0.yaml", line="5"
    )

    out = tmp_path / "out.txt"
    assert out.exists(), finished.stderr
    accepted = out.read_text().splitlines()
    assert not accepted[0].startswith("error"), accepted
    assert accepted[0] == "POST /store/orders"
    assert accepted[1] == "Content-Type: application/json"
    saved = document.read_bytes()
    assert b"\0" not in saved
    lines = saved.decode().splitlines()
    assert lines[:4] == ORDER.splitlines()[:4]
    assert lines[4 : 4 + len(accepted)] == accepted
