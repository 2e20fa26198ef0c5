"""Helpers of the deployment tests: the repository's container files, read without Docker."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, ...
    arguments: str  # the rest, continuation lines joined


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV of this stage, `KEY=value` pairs (the only form the Dockerfile uses)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, comments dropped and continuation lines joined."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        found.append(Instruction(keyword.upper(), " ".join(rest.split())))
    assert not pending, "the Dockerfile ends inside a continuation"
    return found


def stages(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults, and the build stages with their base images (ARGs substituted)."""
    args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(image, name))
        elif not result and instruction.keyword == "ARG":
            key, _, value = instruction.arguments.partition("=")
            args[key] = value
        elif result:
            result[-1].instructions.append(instruction)
    return args, result


def exec_form(arguments: str) -> list[str]:
    """`CMD ["a", "b"]` (after any options) as a list."""
    start = arguments.index("[")
    value = json.loads(arguments[start:])
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def ignore_patterns(path: Path = DOCKERIGNORE) -> list[tuple[bool, str]]:
    """(.dockerignore) patterns in order, as (is_exception, pattern)."""
    patterns: list[tuple[bool, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        patterns.append((exception, pattern))
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern):
        if piece in ("**", "**/"):
            parts.append("(?:.*/)?" if piece == "**/" else ".*")
        elif piece == "*":
            parts.append("[^/]*")
        elif piece == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"\Z")


def in_build_context(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    """Whether Docker sends `relative` with the build context: the last pattern that matches the
    path or one of its parent folders decides (moby's patternmatcher rules, as used here)."""
    candidates = []
    parts = relative.split("/")
    for i in range(1, len(parts) + 1):
        candidates.append("/".join(parts[:i]))
    included = True
    for exception, pattern in patterns:
        regex = _pattern_regex(pattern)
        if any(regex.match(c) for c in candidates):
            included = exception
    return included


def context_files(patterns: list[tuple[bool, str]]) -> list[str]:
    """The repository's files that the build context would hold (git's and tools' folders and
    the virtual environments left out of the walk)."""
    skip = {".git", ".venv", ".venv-distill", "node_modules", ".mypy_cache", ".pytest_cache"}
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [s for s in subfolders if s not in skip]
        for name in names:
            relative = (Path(folder) / name).relative_to(ROOT).as_posix()
            if in_build_context(relative, patterns):
                files.append(relative)
    return sorted(files)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document
