"""Imports go down the layers only, and no module imports itself back through others.

Every `import` and `from ... import` in bloomberg_style/ and tokenizer/ is read with `ast`,
function-level and TYPE_CHECKING ones included (a lazy import is still a dependency). The
order is bloomberg_style.LAYERS, read from the package, so the rule lives in one place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bloomberg_style
from tests.conftest import REPO

ROOTS = ("bloomberg_style", "tokenizer")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _ours(name: str) -> bool:
    return name.split(".")[0] in ROOTS


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of our own code in one file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names if _ours(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not _ours(target):
                continue
            for alias in node.names:  # `from pkg import submodule` depends on the submodule
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in MODULES else target))
    return sorted(set(found))


def _unit(module: str) -> str:
    """The layered name a module belongs to: bloomberg_style.X or tokenizer."""
    parts = module.split(".")
    if parts[0] == "tokenizer":
        return "tokenizer"
    return parts[1] if len(parts) > 1 else ""


def _layer_of() -> dict[str, int]:
    return {name: i for i, names in enumerate(bloomberg_style.LAYERS) for name in names}


def test_every_package_has_a_layer() -> None:
    layers = _layer_of()
    units = {_unit(m) for m in MODULES} - {""}
    missing = sorted(units - set(layers))
    assert not missing, f"add {missing} to bloomberg_style.LAYERS (bloomberg_style/__init__.py)"


def test_imports_go_down_the_layers() -> None:
    layers = _layer_of()
    wrong = []
    for module, path in MODULES.items():
        here = _unit(module)
        for line, target in _imports(module, path):
            there = _unit(target)
            if there == here:
                continue
            if here == "" or there == "":  # the root package imports nothing and is imported by nothing
                wrong.append(f"{path.relative_to(REPO)}:{line}: {module} imports {target} (the package root)")
            elif here in layers and there in layers and layers[there] >= layers[here]:
                direction = "sideways" if layers[there] == layers[here] else "upward"
                wrong.append(
                    f"{path.relative_to(REPO)}:{line}: {here} (layer {layers[here]}) imports {target} "
                    f"({there}, layer {layers[there]}): {direction}"
                )
    assert not wrong, "imports against bloomberg_style.LAYERS:\n" + "\n".join(wrong)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = {m: {t for _, t in _imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    cycles = _cycles(graph)
    assert not cycles, "import cycles (module groups that import each other):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checker_sees_lazy_upward_imports(tmp_path) -> None:
    """The parser must catch a function-level import, the kind that hid model -> export."""
    source = (
        "def f():\n    from bloomberg_style.training.checkpoint import STATE_FILE\n    return STATE_FILE\n"
    )
    tmp = tmp_path / "_probe.py"
    tmp.write_text(source)
    found = _imports("bloomberg_style.model._probe", tmp)
    assert found == [(2, "bloomberg_style.training.checkpoint")]
    assert _layer_of()[_unit(found[0][1])] > _layer_of()[_unit("bloomberg_style.model._probe")]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_are_written_down_in_the_docs() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    for names in bloomberg_style.LAYERS:
        for name in names:
            if name in {_unit(m) for m in MODULES}:
                assert f"`{name}`" in text, f"docs/architecture.md does not name the `{name}` layer"


def test_tests_share_helpers_only_through_conftest() -> None:
    """A test module that imports another test module runs that module's fixtures and module-level
    setup again under a second name; what several test files use lives in tests/conftest.py."""
    wrong = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            wrong += [
                f"{path.name}:{node.lineno} imports {n}"
                for n in names
                if n.split(".")[-1].startswith("test_")
            ]
    assert not wrong, "\n".join(wrong)
