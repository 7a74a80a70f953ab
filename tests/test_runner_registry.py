"""The runner registry and the measurement package's shape: every runner satisfies the Runner contract, and
protocol (a leaf) <- runners <- campaign with no arrow back."""

import ast
from pathlib import Path

import pytest

import hwnas
from hwnas.contracts import Runner
from hwnas.measure.device_profile import CONNECTIONS, list_profiles
from hwnas.measure.runners import RUNNERS, get_runner

MEASURE = Path(hwnas.__file__).parent / "measure"


@pytest.mark.parametrize("kind", sorted(RUNNERS))
def test_every_registered_runner_satisfies_the_contract(kind):
    assert isinstance(RUNNERS[kind](), Runner)


def test_registry_covers_every_connection_type_and_get_runner_uses_it():
    assert set(RUNNERS) == set(CONNECTIONS)
    for p in list_profiles():
        assert type(get_runner(p)) is RUNNERS[p.connection_type]


def _hwnas_imports(path: Path) -> set[str]:
    """Absolute hwnas module names ``path`` imports (relative imports resolved)."""
    pkg = "hwnas." + ".".join(path.relative_to(MEASURE.parent).with_suffix("").parts)
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg.split(".")[: len(pkg.split(".")) - node.level] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            out.update(n for n in names if n.startswith("hwnas"))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("hwnas"))
    return out


def test_protocol_is_a_leaf():
    assert _hwnas_imports(MEASURE / "protocol.py") <= {"hwnas.__version__", "hwnas.errors", "hwnas.contracts"}


def test_runners_never_import_the_campaign():
    for f in (MEASURE / "runners").glob("*.py"):
        assert not any(m.startswith("hwnas.measure.campaign") for m in _hwnas_imports(f)), f.name
