"""The package's shape, enforced: layers (import-linter), no import cycles, small modules.

The layer contract lives in ``pyproject.toml`` (``[tool.importlinter]``); function-level
imports count as much as top-level ones. These tests read the source; they run nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aitrader"
MAX_MODULE_LINES = 600


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package found under ``cwd`` (its own process: grimp caches per process)."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")
    env = {"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_layer_contract_is_kept() -> None:
    out = _lint_imports(ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_a_wrong_way_import_breaks_the_contract(tmp_path: Path) -> None:
    """The lint can fail: a data module importing the trading layer is reported by name."""
    shutil.copytree(PACKAGE, tmp_path / "aitrader", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    bars = tmp_path / "aitrader" / "data" / "bars.py"
    bars.write_text(bars.read_text(encoding="utf-8") + "\n\ndef _bad() -> None:\n"
                    "    from aitrader.trading import engine  # noqa: F401\n", encoding="utf-8")
    out = _lint_imports(tmp_path)
    assert out.returncode != 0
    assert "aitrader.data is not allowed to import aitrader.trading" in out.stdout
    assert "aitrader.data.bars -> aitrader.trading.engine" in out.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative enough for ~200 nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v) & modules:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles_between_modules() -> None:
    """No two modules import each other, directly or around a loop (lazy imports included).

    A package's ``__init__`` re-exporting its own submodules is not a cycle of logic, so
    ``__init__`` modules are left out.
    """
    graph = grimp.build_graph("aitrader", cache_dir=None)
    modules = {m for m in graph.modules if not (PACKAGE.parent / (m.replace(".", "/") + "/__init__.py")).exists()}
    assert _cycles(graph, modules) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (limit {MAX_MODULE_LINES}): split it"
