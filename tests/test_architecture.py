"""The house rules of docs/architecture.md, read from the code's own imports."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
IO_LIBRARIES = ("faust", "mode", "redis", "aiokafka", "asyncio")


def modules(folder: str) -> Iterator[Path]:
    yield from sorted((ROOT / folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (at any depth of the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("folder", ["app/core", "app/policy"])
def test_the_core_imports_no_io_library(folder: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] in IO_LIBRARIES
        )
        for path in modules(folder)
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_app_never_imports_agents() -> None:
    offending = [
        str(path.relative_to(ROOT))
        for path in modules("app")
        if any(name == "agents" or name.startswith("agents.") for name in imported(path))
    ]
    assert offending == []


def test_every_file_the_architecture_page_names_exists() -> None:
    named = set(re.findall(r"`((?:app|agents|tests|docs|deploy)/[\w/.]+\.(?:py|lua|toml|md))`",
                           ARCHITECTURE.read_text(encoding="utf-8")))  # fmt: skip
    assert len(named) > 30, "the page names fewer files than expected: was it rewritten?"
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []


def test_every_pipeline_module_is_on_the_architecture_page() -> None:
    page = ARCHITECTURE.read_text(encoding="utf-8")
    rooms = [
        str(path.relative_to(ROOT))
        for path in modules("app/pipeline")
        if path.name != "__init__.py"
    ]
    assert [room for room in rooms if f"`{room}`" not in page] == []
