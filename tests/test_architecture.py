"""The layout keeps its promises: no import cycles, modules of a readable size, and each
concern in its own room (SQL in the store, Invoke in the task layer)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "deploy"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module of ``known`` that ``path`` imports, anywhere in it: at the top, inside
    functions, under ``TYPE_CHECKING``."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" \
        else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # `from deploy.store import x` depends on deploy.store and, if x is a module, on it.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    found.discard(module_name(path))
    return found


def test_no_import_cycles_in_deploy() -> None:
    """No module of deploy/ reaches itself through its imports, counting imports inside
    functions and under TYPE_CHECKING (a package's __init__ counts as importing nothing
    from the modules that import it)."""
    mods = modules()
    graph = {name: imports_of(path, set(mods)) for name, path in mods.items()}
    # Importing deploy.store.x runs deploy.store's __init__ first; that is not a dependency
    # of x on the package's other modules, so a parent package is not an edge to follow.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep):], dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])

    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_no_module_is_too_long() -> None:
    """Every module of deploy/ and deploy_tasks/ stays under 400 lines (a module past about
    300 becomes a package)."""
    long = {str(p.relative_to(ROOT)): n for p in [*PACKAGE.rglob("*.py"),
                                                  *(ROOT / "deploy_tasks").rglob("*.py")]
            if (n := len(p.read_text().splitlines())) > MAX_LINES}

    assert long == {}


def test_sql_lives_in_the_store_and_invoke_in_the_task_layer() -> None:
    """Only deploy/store/ imports sqlite3, and nothing in deploy/ imports Invoke."""
    mods = modules()
    sqlite_users, invoke_users = [], []
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level}
        if "sqlite3" in imported and not name.startswith("deploy.store"):
            sqlite_users.append(name)
        if {"invoke", "fabric"} & imported:
            invoke_users.append(name)

    assert sqlite_users == []
    assert invoke_users == []
