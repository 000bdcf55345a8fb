"""The package's layout is its architecture: data flows one way, with no import loops.

Every import inside ``src/coverage15`` (module level, inside functions and under
``TYPE_CHECKING`` alike) is read from the source and checked against the order of the flow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import coverage15

PACKAGE = Path(coverage15.__file__).parent

# the flow, top to bottom: a module may import from its own step or an earlier one
STEPS = [
    ("_version", "_errors", "_types", "settings"),
    ("inputs",),
    ("network",),
    ("reach",),
    ("scale",),
    ("result",),
    ("analysis",),
    ("outputs",),
    ("pipeline",),
    ("planning",),
    ("app",),
    ("cli", "__init__", "__main__"),
]
RANK = {name: i for i, names in enumerate(STEPS) for name in names}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__init__"


def _imports(path: Path) -> set[str]:
    """Modules of coverage15 that ``path`` imports (absolute names without the package)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.split(".")[0] == "coverage15":
                target = node.module.partition(".")[2]
            else:
                continue
            for alias in node.names:  # `from coverage15.reach import targets` is a module
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if _exists(candidate) else target or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "coverage15":
                    found.add(alias.name.partition(".")[2] or "__init__")
    found.discard(module)
    return found


def _exists(module: str) -> bool:
    base = PACKAGE.joinpath(*module.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _step(module: str) -> int:
    return RANK[module.split(".", maxsplit=1)[0]]


def test_every_module_belongs_to_a_step():
    assert {m.split(".")[0] for m in _graph()} <= set(RANK)


def test_no_module_imports_a_later_step():
    upward = sorted(f"{m} -> {t}" for m, targets in _graph().items() for t in targets
                    if _step(t) > _step(m))
    assert upward == []


def test_no_import_loops():
    graph = _graph()
    seen: set[str] = set()
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(node: str) -> None:
        if node in stack:
            loops.append([*stack[stack.index(node):], node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # a package's __init__ importing its own members is not a loop between modules
            if not target.startswith(f"{node}.") and node != "__init__":
                visit(target)
        stack.pop()

    for module in sorted(graph):
        visit(module)
    assert loops == []


def test_modules_stay_small():
    sizes = {_module(p): len(p.read_text(encoding="utf-8").splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert {m: n for m, n in sizes.items() if n >= 600} == {}


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rules above can fail: a reach module importing outputs is reported."""
    fake = tmp_path / "coverage15"
    (fake / "reach").mkdir(parents=True)
    (fake / "outputs").mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "reach" / "__init__.py").write_text("")
    (fake / "outputs" / "__init__.py").write_text("")
    (fake / "outputs" / "maps.py").write_text("from coverage15.reach import bad\n")
    (fake / "reach" / "bad.py").write_text("from coverage15.outputs.maps import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    graph = _graph()
    assert graph["reach.bad"] == {"outputs.maps"}
    assert _step("outputs.maps") > _step("reach.bad")
