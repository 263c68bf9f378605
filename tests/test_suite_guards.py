"""Guards on the suite itself: rules whose breach shows up only as a confusing failure elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _session_fixtures(tree: ast.Module) -> set[str]:
    """Fixtures of a module declared with scope="session" (a module-scoped one imported on purpose gives
    each importing module its own instance, e.g. the pipeline tests' pipeline_cleanup)."""
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr == "fixture"
                        and any(k.arg == "scope" and getattr(k.value, "value", None) == "session"
                                for k in decorator.keywords)):
                    names.add(node.name)
    return names


def test_no_test_module_imports_a_session_fixture_from_another() -> None:
    """An imported fixture is a second definition: a session-scoped one (the browser) then starts twice,
    and a second sync Playwright breaks every browser test after it. Shared fixtures live in plugin
    modules (spatial_api_fixtures, browser_fixtures) and are taken by name."""
    modules = {path.stem: ast.parse(path.read_text(encoding="utf-8")) for path in TESTS.rglob("test_*.py")}
    fixtures = {name: _session_fixtures(tree) for name, tree in modules.items()}
    imported = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in fixtures:
                imported += [f"{name} imports {alias.name} from {node.module}" for alias in node.names
                             if alias.name in fixtures[node.module]]
    assert imported == []
