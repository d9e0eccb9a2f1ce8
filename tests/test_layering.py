"""The floors of DESIGN.md section 10 (docs/layout.md): no module imports a higher floor, and no import cycle.

Every ``import`` and ``from ... import`` of the package (function-level ones included) is read with
ast; each module gets the floor of the longest prefix in FLOORS (``*.commands`` modules are the CLI's).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "satasim_atsn"

# module prefix -> floor (1 lowest). A module takes the floor of its longest matching prefix.
FLOORS = {
    "satasim_atsn": 1,  # the package itself (__version__)
    "satasim_atsn.errors": 1,
    "satasim_atsn.fileio": 1,
    "satasim_atsn.workload": 2,  # format, networks, synthetic networks, the Trace data object
    "satasim_atsn.snn": 3,
    "satasim_atsn.traces": 4,
    "satasim_atsn.workload.datasets": 4,  # DESIGN puts datasets on floor 4 (it needs only floor 1)
    "satasim_atsn.train": 4,
    "satasim_atsn.interchange": 4,  # NIR import/export: runs the forward to check an import
    "satasim_atsn.hw": 5,
    "satasim_atsn.report": 6,
    "satasim_atsn.study": 7,
    "satasim_atsn.cli": 8,
    "satasim_atsn.options": 8,  # the commands' shared click parameter types
    "satasim_atsn.__main__": 8,
    "satasim_atsn.entry": 8,
}
CLI_FLOOR = 8  # every area's commands.py registers CLI commands


def floor_of(module: str) -> int:
    """The floor of a module: ``*.commands`` is the CLI's; otherwise the longest prefix in FLOORS."""
    if module.rsplit(".", 1)[-1] == "commands":
        return CLI_FLOOR
    best = max((p for p in FLOORS if module == p or module.startswith(p + ".")), key=len, default=None)
    assert best is not None, f"{module} has no floor: add it to FLOORS in tests/test_layering.py and docs/layout.md"
    return FLOORS[best]


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        out[name] = path
    return out


def imports_of(module: str, source: str, known: set[str], is_package: bool = False) -> set[str]:
    """The package's modules that ``source`` imports (a ``from pkg import mod`` counts as mod)."""
    pkg = module if is_package else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports."""
    files = module_files(root)
    known = set(files)
    return {m: imports_of(m, p.read_text(encoding="utf-8"), known, p.name == "__init__.py") for m, p in files.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """'a (floor x) -> b (floor y)' for every import of a higher floor."""
    return sorted(f"{a} ({floor_of(a)}) -> {b} ({floor_of(b)})" for a, deps in graph.items() for b in deps
                  if floor_of(b) > floor_of(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_a_higher_floor():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle_between_modules_or_packages():
    graph = import_graph()
    assert cycles(graph) == []
    packages: dict[str, set[str]] = {}
    for a, deps in graph.items():
        pa = ".".join(a.split(".")[:2])
        packages.setdefault(pa, set()).update(".".join(b.split(".")[:2]) for b in deps)
    for p, deps in packages.items():
        deps.discard(p)
    assert cycles(packages) == []


def test_every_module_has_a_floor():
    for module in import_graph():
        floor_of(module)


def test_the_check_catches_an_upward_import_and_a_cycle(tmp_path):
    """A planted snn -> hw import and a hw <-> hw cycle in a copy of the layout are reported."""
    root = tmp_path / "satasim_atsn"
    for sub in ("snn", "hw"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "snn" / "forward.py").write_text("def f():\n    from satasim_atsn.hw import engine\n")
    (root / "hw" / "engine.py").write_text("from . import mapping\n")
    (root / "hw" / "mapping.py").write_text("from satasim_atsn.hw.engine import x\n")
    graph = import_graph(root)
    assert upward_imports(graph) == ["satasim_atsn.snn.forward (3) -> satasim_atsn.hw.engine (5)"]
    assert cycles(graph) == [["satasim_atsn.hw.engine", "satasim_atsn.hw.mapping"]]
