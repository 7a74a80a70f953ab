"""The shape of the package is checked like its behaviour: layers point down only (import-linter contracts in
pyproject.toml) and ruff finds nothing. Both tools come with the `dev` extra that the README's install command
installs, so `.ci/run` runs these checks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def test_import_layers_point_down_only():
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "KEPT" in proc.stdout


def test_ruff_is_clean():
    proc = subprocess.run([_tool("ruff"), "check", "hwnas", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_contracts_import_nothing_of_hwnas_but_errors():
    import ast

    tree = ast.parse((ROOT / "hwnas" / "contracts.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert imported <= {"errors", "pareto"}, imported  # pareto: the non-dominated mask, a numeric leaf


def test_a_planted_upward_import_is_caught(tmp_path):
    """The layer check can fail: copy the package, make a low layer import the CLI, and run the contracts."""
    lint = _tool("lint-imports")
    shutil.copytree(ROOT / "hwnas", tmp_path / "hwnas", ignore=shutil.ignore_patterns("__pycache__", "*.npy"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    store = tmp_path / "hwnas" / "store.py"
    store.write_text(store.read_text() + "\nfrom .cli import common as _upward  # noqa\n")
    proc = subprocess.run([lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0 and "hwnas.store -> hwnas.cli" in proc.stdout, proc.stdout[-3000:]
