"""The import rules of the README's "How it is built", checked by reading the source with ``ast``.

Every ``import closedloop.X`` anywhere in a module (inside functions and ``TYPE_CHECKING`` blocks
too) counts.  The test lists every violation at once, so one run shows the whole debt.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "closedloop"

# The parts of the README's layout; a module belongs to the first segment under closedloop.
PARTS = {"cli", "config", "store", "connectors", "mapping", "attribution", "files", "sync", "sandbox",
         "report", "errors", "records"}  # fmt: skip
ENTRY_MODULES = {"closedloop", "closedloop.__main__"}  # the package and `python -m closedloop`: the face

# Which other parts each part may import.  errors and records are plain shapes every part shares.
SHARED = {"errors", "records"}
MAY_IMPORT: dict[str, set[str]] = {
    "cli": PARTS - {"cli"},
    "config": SHARED,
    "store": {"config"} | SHARED,
    "connectors": {"config"} | SHARED,
    "mapping": {"attribution", "config"} | SHARED,
    "attribution": {"mapping", "config"} | SHARED,
    "files": {"attribution", "config"} | SHARED,
    "sync": {"connectors", "store", "mapping", "attribution", "files", "config"} | SHARED,
    "report": {"store", "mapping", "attribution", "files", "config"} | SHARED,
    "sandbox": {"config"} | SHARED,
    "errors": set(),
    "records": set(),
}
# The demo runs the whole loop against the sandbox, so it may use what a run uses.
EXTRA_FOR_MODULE: dict[str, set[str]] = {
    "closedloop.sandbox.demo": {"sync", "store", "report", "attribution", "mapping", "connectors"},
}
# Modules of a part that the pure parts must never import even though the part is allowed.
FORBIDDEN_MODULES: dict[str, set[str]] = {
    "mapping": {"closedloop.config.loader"},  # config models yes, config loading (files, env) no
    "attribution": {"closedloop.config.loader"},
}
TYPER_ONLY_IN = "cli"
# Parts that do no I/O: none of these modules, and no open(); reading the user's files is files/'s job.
NO_IO_PARTS = {"attribution"}
IO_MODULES = {"os", "io", "csv", "pickle", "mmap", "subprocess", "socket", "shutil", "tempfile", "pathlib",
              "threading", "multiprocessing", "yaml"}  # fmt: skip
# Violations owned by work in progress elsewhere, each with why; the test fails when one is gone
# too, so the entry is removed with the fix.
KNOWN_VIOLATIONS: dict[str, str] = {}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = ast.parse(file.read_text(encoding="utf-8"), str(file))
    return found


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "closedloop":  # from closedloop import errors
                names.update(f"closedloop.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def _part(module: str) -> str:
    return "<entry>" if module in ENTRY_MODULES else module.split(".")[1]


def _edges() -> dict[str, set[str]]:
    """Every module and the modules it imports."""
    return {module: _imports(tree) for module, tree in _modules().items()}


def test_every_module_belongs_to_a_part() -> None:
    strays = [m for m in _modules() if m not in ENTRY_MODULES and _part(m) not in PARTS]
    assert strays == [], f"modules outside every part of the README layout: {strays}"


def test_parts_import_only_what_the_rules_allow() -> None:
    violations = []
    for module, imported in _edges().items():
        part = _part(module)
        allowed = MAY_IMPORT.get(part, {"cli"}) | EXTRA_FOR_MODULE.get(module, set())
        for name in sorted(imported):
            root = name.split(".")[0]
            if root == "typer" and part != TYPER_ONLY_IN:
                violations.append(f"{module} imports typer (only cli/ may)")
            if root != "closedloop" or name == "closedloop":
                continue
            target = name.split(".")[1]
            if target not in PARTS or target == part:
                continue
            if target not in allowed:
                violations.append(f"{module} ({part}) imports {name} ({target})")
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_MODULES.get(part, ())):
                violations.append(f"{module} ({part}) imports {name}: config loading, not models")
    found = set(violations)
    new = sorted(found - KNOWN_VIOLATIONS.keys())
    fixed = sorted(KNOWN_VIOLATIONS.keys() - found)
    assert new == [], "import rules broken:\n" + "\n".join(new)
    assert fixed == [], "fixed, so remove from KNOWN_VIOLATIONS:\n" + "\n".join(fixed)


def test_pure_parts_do_no_io() -> None:
    found = []
    for module, tree in _modules().items():
        if module in ENTRY_MODULES or _part(module) not in NO_IO_PARTS:
            continue
        found += [f"{module} imports {name}" for name in sorted(_imports(tree)) if name.split(".")[0] in IO_MODULES]
        calls = (node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name))
        found += [f"{module}:{node.lineno} calls open()" for node in calls if node.func.id == "open"]
    assert found == [], "I/O in a pure part:\n" + "\n".join(found)


def test_no_cycle_between_parts() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imported in _edges().items():
        part = _part(module)
        for name in imported:
            bits = name.split(".")
            if bits[0] == "closedloop" and len(bits) > 1 and bits[1] in PARTS and bits[1] != part:
                graph[part].add(bits[1])
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    assert cycles == [], "cycles between parts:\n" + "\n".join(sorted(cycles))


def test_the_rules_catch_a_planted_violation() -> None:
    """The checker itself: a pure part importing the store must be found."""
    tree = ast.parse("def f():\n    from closedloop.store.engine import open_store\n")
    assert "closedloop.store.engine" in _imports(tree)
    assert "store" not in MAY_IMPORT["attribution"]


def test_help_imports_no_part_and_no_sqlalchemy() -> None:
    probe = (
        "import sys\n"
        "from closedloop.cli.main import app\n"
        "try:\n"
        "    app(['--help'], prog_name='closedloop')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'pydantic')\n"
        "               or m.startswith(('closedloop.store', 'closedloop.sync', 'closedloop.attribution',\n"
        "                                'closedloop.mapping', 'closedloop.connectors', 'closedloop.sandbox')))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert "Commands" in done.stdout and "attribute" in done.stdout, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr
