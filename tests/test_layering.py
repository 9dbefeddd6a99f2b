"""Structure: the core imports no plugin by name, has no import cycle, and functions stay short."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "gantools"
ROOT = CORE.parent
MAX_FUNCTION_LINES = 60


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
    return names


def test_core_does_not_import_plugins():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(CORE)): sorted(m for m in imported_modules(f)
                                                   if m.split(".")[0] in ("gantools_plugins", "plugins"))
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_the_check_itself_sees_plugin_imports(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import os\nfrom gantools_plugins.losses import gan\n")
    assert "gantools_plugins.losses" in imported_modules(sample)


# --- Import cycles -------------------------------------------------------------------------------
def package_modules(package_dir: Path) -> dict[str, Path]:
    """Every module of the package in ``package_dir`` by dotted name; a package is its __init__.py."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes in the body (not the else) of ``if TYPE_CHECKING:`` / ``if typing.TYPE_CHECKING:``."""
    exempt = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (getattr(test, "id", None) == "TYPE_CHECKING"
                                         or getattr(test, "attr", None) == "TYPE_CHECKING"):
            exempt.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return exempt


def _imported_names(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The absolute dotted names module ``name`` imports anywhere (in functions too), as deep as a
    module: ``from a import b`` gives ``a.b`` when that is a module, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    exempt = _type_checking_only(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importer's package, up level - 1 packages
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            found += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.append(str(node.args[0].value))
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, counting every package whose __init__ an import
    runs (``import a.b.c`` runs a, a.b and a.b.c). A package importing its own submodules and a
    module naming its own packages are left out (neither is a cycle); a self-import stays."""
    modules = package_modules(package_dir)
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imported_names(name, path, modules):
            parts = imported.split(".")
            prefixes = [p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if p in modules]
            targets.update(p for p in prefixes if p != name or p == prefixes[-1])
        graph[name] = {t for t in targets if not t.startswith(name + ".")}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """One line per strongly connected group of modules larger than one, and per self-import."""
    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo += graph[module]
        return seen

    reach = {module: reachable(module) for module in graph}
    cycles, done = [], set()
    for module in sorted(graph):
        group = sorted({module} | {m for m in reach[module] if module in reach[m]})
        if module not in done and (len(group) > 1 or module in graph[module]):
            cycles.append(" <-> ".join(group) if len(group) > 1 else f"{module} imports itself")
        done.update(group)
    return cycles


def test_the_core_has_no_import_cycle():
    graph = import_graph(CORE)
    assert len(graph) > 10 and "gantools.ops._backend" in graph
    assert import_cycles(graph) == []


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "pkg" / name).write_text(text)
    return root / "pkg"


def test_the_cycle_check_sees_an_import_inside_a_function(tmp_path):
    pkg = write_package(tmp_path, {"__init__.py": "", "a.py": "def f():\n    import pkg.b\n",
                                   "b.py": "import pkg.a\n"})
    assert import_cycles(import_graph(pkg)) == ["pkg.a <-> pkg.b"]


def test_the_cycle_check_exempts_type_checking_imports(tmp_path):
    pkg = write_package(tmp_path, {
        "__init__.py": "", "b.py": "import pkg.a\n",
        "a.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import pkg.b\n"})
    assert import_cycles(import_graph(pkg)) == []


@pytest.mark.parametrize("files, cycles", [
    ({"a.py": "from . import b\n", "b.py": "from .a import f\n"}, ["pkg.a <-> pkg.b"]),
    ({"a.py": "if TYPE_CHECKING:\n    pass\nelse:\n    from pkg.b import g\n", "b.py": "import pkg.a\n"},
     ["pkg.a <-> pkg.b"]),  # only the TYPE_CHECKING branch itself is exempt
    ({"sub/__init__.py": "from .. import a\n", "sub/c.py": "",
      "a.py": "from pkg.sub.c import x\n"}, ["pkg.a <-> pkg.sub"]),  # importing sub.c runs sub/__init__
    ({"__init__.py": "from pkg import a\nfrom . import b\n", "a.py": "import pkg\n",
      "b.py": "import pkg.a\n"}, []),  # a package's __init__ importing its own submodules
    ({"a.py": "def f():\n    from pkg.a import f\n"}, ["pkg.a imports itself"]),
])
def test_the_cycle_check_resolves_imports(tmp_path, files, cycles):
    assert import_cycles(import_graph(write_package(tmp_path, {"__init__.py": "", **files}))) == cycles


# --- Function length -----------------------------------------------------------------------------
def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """Functions and methods under ``root`` longer than ``limit`` lines (def to last line, no decorators)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name}: {lines} lines")
    return found


def test_functions_are_at_most_60_lines():
    assert long_functions(ROOT / "gantools") + long_functions(ROOT / "plugins") == []


def test_the_length_check_counts_from_the_def_line(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(59))  # with the def line: 60 lines
    (tmp_path / "m.py").write_text("@decorator\n@other\ndef fits():\n" + body + "class C:\n"
                                   "    async def too_long(self):\n" + body.replace("    ", "        ")
                                   + "        return x58\n")
    assert long_functions(tmp_path) == [f"{tmp_path.name}/m.py:64 too_long: 61 lines"]
