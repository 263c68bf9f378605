"""The import contract: the arrows of the tree run one way (read ../shared/STYLE.md).

- gis/ (the spine) imports no family, no route, no web framework and nothing from data/;
- a family (layers/<family>/) imports no route, no web framework, not the demo generator, and another
  family only through its service (another family's layers are reached by id in gis.registry);
- a router (api/routes/*) imports no other router and, of a family, only its service, schemas and
  layer declarations (never a repository or a computation module: the service is what routes call);
- nothing the service runs imports the demo generator (the CLI's data and db commands load it).

Checked by parsing every module (no import side effects), so a violation names file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("fastapi", "starlette", "uvicorn")
FAMILIES = sorted(p.name for p in (ROOT / "layers").iterdir()
                  if p.is_dir() and (p / "service.py").exists())


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a module, relative ones resolved; `from a import b` gives
    both a and a.b (b may be a module)."""
    package = path.relative_to(ROOT).with_suffix("").parts
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _modules(folder: str, *, skip: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in sorted((ROOT / folder).rglob("*.py")) if not any(s in p.parts for s in skip)]


def _starts(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations() -> list[str]:
    found: list[str] = []
    for path in _modules("gis"):
        for line, name in _imports(path):
            if _starts(name, "layers", "api", "data", "webmap", *FRAMEWORKS):
                found.append(f"{path.relative_to(ROOT)}:{line} gis imports {name}")
    for path in _modules("layers", skip=("migrations",)):
        rel = path.relative_to(ROOT)
        family = rel.parts[1] if len(rel.parts) > 2 else None
        for line, name in _imports(path):
            if _starts(name, "api", "webmap", "data.democity", *FRAMEWORKS):
                found.append(f"{rel}:{line} a family imports {name}")
            parts = name.split(".")
            if family and len(parts) >= 3 and parts[0] == "layers" and parts[1] in FAMILIES \
                    and parts[1] != family and parts[2] != "service":
                found.append(f"{rel}:{line} {family} reaches into {parts[1]} beyond its service: {name}")
    for path in _modules("api/routes"):
        rel = path.relative_to(ROOT)
        for line, name in _imports(path):
            parts = name.split(".")
            if path.name != "__init__.py" and _starts(name, "api.routes") and len(parts) >= 3 \
                    and parts[2] != path.stem:
                found.append(f"{rel}:{line} a router imports another router: {name}")
            if len(parts) >= 3 and parts[0] == "layers" and parts[1] in FAMILIES \
                    and parts[2] not in ("service", "schemas", "layers"):
                found.append(f"{rel}:{line} a router reaches past the {parts[1]} service: {name}")
    for folder in ("gis", "api", "webmap"):  # (layers/ is checked above)
        for path in _modules(folder, skip=("commands",)):
            for line, name in _imports(path):
                if _starts(name, "data.democity"):
                    found.append(f"{path.relative_to(ROOT)}:{line} the service imports the demo generator")
    first: dict[str, str] = {}  # one finding per import line (`from a import b` yields a and a.b)
    for finding in found:
        first.setdefault(finding.split(" ", 1)[0], finding)
    return sorted(first.values())


def test_the_tree_keeps_its_import_contract() -> None:
    assert FAMILIES == ["cadastre", "emergency", "landuse", "pipeline"]
    assert violations() == []


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> Path:
    import shutil

    copy = tmp_path_factory.mktemp("tree")
    for folder in ("gis", "layers", "api", "webmap"):
        shutil.copytree(ROOT / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "node_modules", "static", "docs", "*.png"))
    return copy


@pytest.mark.parametrize("module, line", [
    ("gis/features.py", "from layers.cadastre import service"),
    ("layers/emergency/routing.py", "from layers.pipeline.repository import pipes_in_area"),
    ("layers/landuse/balance.py", "from fastapi import HTTPException"),
    ("api/routes/planning.py", "from api.routes.land import router"),
    ("api/routes/land.py", "from layers.cadastre.repository import parcel"),
    ("layers/pipeline/service.py", "from data.democity import CENTRE"),
])
def test_a_planted_violation_is_named(module: str, line: str, tree_copy: Path, monkeypatch) -> None:
    """Each rule catches its breach: the same check over a copy of the tree with one bad import."""
    planted = tree_copy / module
    original = planted.read_text(encoding="utf-8")
    planted.write_text(original + f"\n{line}\n", encoding="utf-8")
    try:
        monkeypatch.setattr(__import__(__name__), "ROOT", tree_copy)
        found = violations()
    finally:
        planted.write_text(original, encoding="utf-8")
    assert len(found) == 1 and found[0].startswith(module), found
