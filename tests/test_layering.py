"""The core never imports a plugin module by name: plugins are reached through the registry only."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "gantools"


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
