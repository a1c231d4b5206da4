"""Imports go one way: contracts ← protocol ← node ← sim (DESIGN §1), and node/'s own
modules form no cycle, with the core below the HTTP layers."""

from __future__ import annotations

import ast
import graphlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = {"contracts": 0, "protocol": 1, "node": 2, "sim": 3}
#: node modules that speak HTTP: the core and the home never import them
HTTP_LAYERS = {"node.api", "node.peer", "node.server", "node.cli"}


def imports_of(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, at module level or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            found.add(n.module)
            # `from node import core` imports node.core
            found.update(f"{n.module}.{a.name}" for a in n.names)
    return found


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules(package: str) -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted((ROOT / package).rglob("*.py"))}


ALL = {pkg: modules(pkg) for pkg in LAYERS}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_go_one_way(package: str) -> None:
    rank = LAYERS[package]
    bad = sorted(
        f"{mod} imports {imp}"
        for mod, imps in ALL[package].items()
        for imp in imps
        if imp.split(".")[0] in LAYERS and LAYERS[imp.split(".")[0]] > rank
    )
    assert bad == []


def test_node_never_imports_sim() -> None:
    assert not any(imp.split(".")[0] == "sim" for imps in ALL["node"].values() for imp in imps)


def node_graph() -> dict[str, set[str]]:
    node = ALL["node"]
    return {mod: {i for i in imps if i in node and i != mod} for mod, imps in node.items()}


def test_node_modules_have_no_cycle() -> None:
    graphlib.TopologicalSorter(node_graph()).prepare()  # raises CycleError on a cycle


def test_core_and_home_import_no_http_layer() -> None:
    graph = node_graph()
    for low in ("node.core", "node.home", "node.store", "node.index", "node.config"):
        seen: set[str] = set()
        todo = [low]
        while todo:
            m = todo.pop()
            for dep in graph.get(m, ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        assert not (seen & HTTP_LAYERS), f"{low} reaches {sorted(seen & HTTP_LAYERS)}"


def test_the_checks_catch_what_they_look_for(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sim.runner import Simulation\n    import node.api\n")
    assert {"sim.runner", "node.api", "sim.runner.Simulation"} <= imports_of(bad)
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()
