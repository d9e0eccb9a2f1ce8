"""Functions that read in one screen (issue 8): no production function over LIMIT lines.

A function's length runs from its ``def`` line to its last line, docstring and nested functions
included. A numba kernel may stay longer when splitting it would cost speed: it is then listed in
LONG_KERNELS with the reason, and a one-line comment above it says why.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "satasim_atsn"
LIMIT = 80

# "path/in/package.py::qualified.name" -> why the kernel must stay long. Empty today: the longest
# numba kernel, hw/kernels.py _stream_slice, is 74 lines.
LONG_KERNELS: dict[str, str] = {}


def function_lengths(source: str) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, int]]:
    """Every function and method of ``source`` (nested ones too): (qualified name, node, lines def..end)."""
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((prefix + child.name, child, child.end_lineno - child.lineno + 1))
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(source), "")
    return found


def production_functions() -> dict[str, tuple[ast.FunctionDef | ast.AsyncFunctionDef, int, list[str]]]:
    """``path::qualname`` -> (node, lines, the file's lines) for every function of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for name, node, lines in function_lengths(text):
            out[f"{path.relative_to(PACKAGE).as_posix()}::{name}"] = (node, lines, text.splitlines())
    return out


def test_lengths_count_whole_functions():
    source = '''
import numba


class A:
    def method(self):
        """Docstring."""

        def inner():
            return 1

        return inner()


@numba.njit(cache=True)
def kernel(x):
    y = x
    return y
'''
    got = {name: lines for name, _, lines in function_lengths(source)}
    assert got == {"A.method": 7, "A.method.inner": 2, "kernel": 3}


def test_no_production_function_over_the_limit():
    functions = production_functions()
    assert len(functions) > 500  # the walk sees the whole package
    too_long = sorted(
        f"{name} ({lines} lines)"
        for name, (_, lines, _) in functions.items()
        if lines > LIMIT and name not in LONG_KERNELS
    )
    assert not too_long, (
        f"functions over {LIMIT} lines (split them, or list a numba kernel in LONG_KERNELS with its reason): "
        + ", ".join(too_long)
    )


def test_long_kernels_are_long_numba_kernels_that_say_why():
    functions = production_functions()
    for name, reason in LONG_KERNELS.items():
        assert name in functions, f"{name}: no such function; drop it from LONG_KERNELS"
        node, lines, text = functions[name]
        assert lines > LIMIT, f"{name} is {lines} lines now; drop it from LONG_KERNELS"
        decorators = [ast.unparse(d) for d in node.decorator_list]
        assert any("jit" in d for d in decorators), f"{name} is not a numba kernel; split it"
        assert reason.strip(), f"{name}: give the reason it must stay long"
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        assert text[first - 2].strip().startswith("#"), f"{name}: put a one-line comment above it saying why"
