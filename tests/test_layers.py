"""The import graph keeps the layers: the core under everything, the service over it, the
surfaces side by side. Every import of every module counts, in functions and type-checking
blocks too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "opensesame_predictor"
PROTOCOL_LIBRARIES = (
    "pygls",
    "lsprotocol",
    "mcp",
    "mcp_types",
    "fastapi",
    "starlette",
    "uvicorn",
    "prometheus_client",
    "limits",
)
SURFACES = ("http", "mcp", "lsp")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def offending(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(i for i in MODULES[module] if any(within(i, f) for f in forbidden))


def test_the_graph_was_read() -> None:
    assert "opensesame_predictor.core.predictor" in MODULES
    assert (
        "opensesame_predictor.surfaces.mcp.tools"
        in MODULES["opensesame_predictor.surfaces.mcp.server"]
    )
    assert "opensesame_predictor.service" in MODULES["opensesame_predictor.cli"]
    # a relative import resolves against the module's package
    assert module_name(PACKAGE / "surfaces" / "lsp" / "__init__.py") == (
        "opensesame_predictor.surfaces.lsp"
    )


@pytest.mark.parametrize("module", [m for m in MODULES if within(m, "opensesame_predictor.core")])
def test_the_core_imports_no_protocol_and_nothing_above_it(module: str) -> None:
    above = tuple(
        f"opensesame_predictor.{name}"
        for name in ("config", "service", "present", "surfaces", "offline", "cli")
    )
    assert offending(module, PROTOCOL_LIBRARIES + above) == []


@pytest.mark.parametrize("module", ["opensesame_predictor.service", "opensesame_predictor.present"])
def test_the_service_and_its_views_import_no_surface_and_no_protocol(module: str) -> None:
    forbidden = ("opensesame_predictor.surfaces", "opensesame_predictor.cli")
    assert offending(module, PROTOCOL_LIBRARIES + forbidden) == []


@pytest.mark.parametrize(
    "module", [m for m in MODULES if m.startswith("opensesame_predictor.surfaces.")]
)
def test_no_surface_imports_a_sibling(module: str) -> None:
    own = module.split(".")[2]
    siblings = tuple(f"opensesame_predictor.surfaces.{s}" for s in SURFACES if s != own)
    assert offending(module, (*siblings, "opensesame_predictor.cli")) == []
