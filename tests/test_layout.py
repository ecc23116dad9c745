"""The shape of the package (issue 13): small modules, short functions, short signatures,
no import cycle. Read from the source with `ast`; nothing is imported or run.

Run `python tests/test_layout.py` for the whole to-do list: every module, function and
signature over its limit, and every import cycle with the lines that make it."""

from __future__ import annotations

import ast
import itertools
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "fanout_cli"

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # from the `def` line to the end of the body
MAX_PARAMETERS = 12  # `self` and `cls` of a method are not counted



@dataclass(frozen=True)
class Module:
    name: str  # dotted: fanout_cli.executors.agent; a package's __init__ is the package
    where: str  # the path from the checkout's root
    is_package: bool
    tree: ast.Module
    lines: int


@dataclass(frozen=True)
class Offender:
    where: str  # file:line
    what: str
    size: int
    unit: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what} ({self.size} {self.unit})"


@dataclass(frozen=True)
class Edge:
    target: str
    line: int


def load_modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        text = path.read_text(encoding="utf-8")
        name, where = ".".join(parts), str(path.relative_to(root))
        tree = ast.parse(text, where)
        modules[name] = Module(name, where, is_package, tree, len(text.splitlines()))
    return modules


# --- sizes ------------------------------------------------------------------------------


def large_modules(modules: Mapping[str, Module]) -> list[Offender]:
    found = [Offender(f"{module.where}:1", module.name, module.lines, "lines")
             for module in modules.values() if module.lines > MAX_MODULE_LINES]  # fmt: skip
    return sorted(found, key=lambda offender: -offender.size)


Function = ast.FunctionDef | ast.AsyncFunctionDef


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, Function, bool]]:
    """Every function at any depth as (qualified name, node, is a method)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child, isinstance(tree, ast.ClassDef)
            yield from functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from functions(child, f"{prefix}{child.name}.")
        else:
            yield from functions(child, prefix)


def function_lines(node: Function) -> int:
    end = node.end_lineno if node.end_lineno is not None else node.lineno
    return end - node.lineno + 1  # node.lineno is the `def` line, decorators excluded


def parameter_count(node: Function, is_method: bool) -> int:
    arguments = node.args
    names = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
    count = len(names) + len(arguments.kwonlyargs)
    count += (arguments.vararg is not None) + (arguments.kwarg is not None)
    is_static = any(isinstance(d, ast.Name) and d.id == "staticmethod"
                    for d in node.decorator_list)  # fmt: skip
    if is_method and not is_static and names and names[0] in ("self", "cls"):
        count -= 1
    return count


def long_functions(modules: Mapping[str, Module]) -> list[Offender]:
    found = [
        Offender(f"{module.where}:{node.lineno}", f"{name}()", function_lines(node), "lines")
        for module in modules.values()
        for name, node, _ in functions(module.tree)
        if function_lines(node) > MAX_FUNCTION_LINES
    ]
    return sorted(found, key=lambda offender: -offender.size)


def wide_signatures(modules: Mapping[str, Module]) -> list[Offender]:
    found = [
        Offender(f"{module.where}:{node.lineno}", f"{name}()",
                 parameter_count(node, is_method), "parameters")
        for module in modules.values()
        for name, node, is_method in functions(module.tree)
        if parameter_count(node, is_method) > MAX_PARAMETERS
    ]  # fmt: skip
    return sorted(found, key=lambda offender: -offender.size)


# --- the import graph -------------------------------------------------------------------


def absolute_base(module: Module, node: ast.ImportFrom) -> str:
    """The module a `from X import ...` names, with relative levels resolved. Inside a
    package's __init__, `.` is the package itself; elsewhere it is the parent package."""
    if node.level == 0:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts.pop()
    if node.level > 1:
        parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def imported_modules(module: Module, modules: Mapping[str, Module]) -> Iterator[Edge]:
    """Every package module that `module` imports, anywhere in it (in functions, under
    TYPE_CHECKING). `from P import x` is an edge to P.x when x is a module, else to P."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield Edge(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = absolute_base(module, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    yield Edge(submodule, node.lineno)
                elif base in modules:
                    yield Edge(base, node.lineno)


def import_graph(modules: Mapping[str, Module]) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}; self-imports are dropped."""
    graph: dict[str, dict[str, int]] = {}
    for name, module in modules.items():
        targets: dict[str, int] = {}
        for edge in imported_modules(module, modules):
            if edge.target != name:
                targets.setdefault(edge.target, edge.line)
        graph[name] = targets
    return graph


def strongly_connected(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """Tarjan's components of more than one module, each sorted, the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle(graph: Mapping[str, Mapping[str, int]], component: Sequence[str]) -> list[str]:
    """A shortest cycle through the component's first module, as a closed path."""
    start, members = component[0], set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(graph[node]):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if target in members and target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def import_cycles(modules: Mapping[str, Module]) -> list[Offender]:
    """One offender per cycle: each step with the file:line of the import that makes it."""
    graph = import_graph(modules)
    found = []
    for component in strongly_connected(graph):
        path = shortest_cycle(graph, component)
        steps = [f"{source} ({modules[source].where}:{graph[source][target]}) -> {target}"
                 for source, target in itertools.pairwise(path)]  # fmt: skip
        first = modules[path[0]]
        where = f"{first.where}:{graph[path[0]][path[1]]}"
        what = "import cycle: " + "; ".join(steps)
        if len(component) > len(path) - 1:  # more modules than this one cycle: name them all
            what += f"; all in the tangle: {', '.join(component)}"
        found.append(Offender(where, what, len(component), "modules"))
    return found


# --- the tests --------------------------------------------------------------------------


def report(title: str, offenders: Sequence[Offender]) -> str:
    return f"{len(offenders)} {title}:\n" + "\n".join(f"  {offender}" for offender in offenders)


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return load_modules()


def test_no_module_over_400_lines(modules: dict[str, Module]) -> None:
    offenders = large_modules(modules)
    assert not offenders, report(f"modules over {MAX_MODULE_LINES} lines", offenders)


def test_no_function_over_60_lines(modules: dict[str, Module]) -> None:
    offenders = long_functions(modules)
    assert not offenders, report(f"functions over {MAX_FUNCTION_LINES} lines", offenders)


def test_no_function_over_12_parameters(modules: dict[str, Module]) -> None:
    offenders = wide_signatures(modules)
    assert not offenders, report(f"functions over {MAX_PARAMETERS} parameters", offenders)


def test_no_import_cycle(modules: dict[str, Module]) -> None:
    offenders = import_cycles(modules)
    assert not offenders, report("import cycles (imports inside functions count)", offenders)


# The checker checked: each rule on a small made-up package, so that an empty to-do list
# means the code is in shape and not that the checker looks nowhere.


def write_package(root: Path, files: Mapping[str, str]) -> dict[str, Module]:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load_modules(root, "pkg")


def test_the_checker_finds_sizes_and_signatures(tmp_path: Path) -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES - 1))
    wide = ", ".join(f"a{n}" for n in range(MAX_PARAMETERS))
    modules = write_package(tmp_path, {
        "__init__.py": "",
        "big.py": "\n" * MAX_MODULE_LINES + "x = 1\n",
        "fns.py": f"def fits():\n{body}\n\ndef long():\n{body}    x = 0\n\n"
                  f"class C:\n    def fits(self, {wide}): ...\n"
                  f"    def wide(self, {wide}, *rest): ...\n",
    })  # fmt: skip
    assert [str(o) for o in large_modules(modules)] == ["pkg/big.py:1: pkg.big (401 lines)"]
    assert [str(o) for o in long_functions(modules)] == ["pkg/fns.py:63: long() (61 lines)"]
    assert [str(o) for o in wide_signatures(modules)] == [
        "pkg/fns.py:127: C.wide() (13 parameters)"
    ]


def test_the_checker_finds_cycles_through_functions_and_packages(tmp_path: Path) -> None:
    modules = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def later() -> None:\n    from .sub import c\n",
        "sub/__init__.py": "from . import c\n",  # the package's own child: no cycle
        "sub/c.py": "import pkg.a\n",
        "d.py": "from pkg.sub import c\n",  # one way only
    })  # fmt: skip
    graph = import_graph(modules)
    assert (graph["pkg.sub"], graph["pkg.d"]) == ({"pkg.sub.c": 1}, {"pkg.sub.c": 1})
    assert [str(o) for o in import_cycles(modules)] == [
        "pkg/a.py:1: import cycle: pkg.a (pkg/a.py:1) -> pkg.b; pkg.b (pkg/b.py:2) -> "
        "pkg.sub.c; pkg.sub.c (pkg/sub/c.py:1) -> pkg.a (3 modules)"
    ]


def main() -> int:
    modules = load_modules()
    sections = [
        (f"modules over {MAX_MODULE_LINES} lines", large_modules(modules)),
        (f"functions over {MAX_FUNCTION_LINES} lines", long_functions(modules)),
        (f"functions over {MAX_PARAMETERS} parameters", wide_signatures(modules)),
        ("import cycles (imports inside functions count)", import_cycles(modules)),
    ]
    for title, offenders in sections:
        print(report(title, offenders), end="\n\n")
    return 1 if any(offenders for _, offenders in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
