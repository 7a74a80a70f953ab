"""The runner registry and the measurement package's shape: every runner satisfies the Runner contract, and
protocol (a leaf) <- runners <- campaign with no arrow back."""

import ast
import inspect
from pathlib import Path

import pytest

import hwnas
from hwnas.contracts import Runner
from hwnas.measure.device_profile import CONNECTIONS, list_profiles
from hwnas.measure.runners import RUNNERS, get_runner

MEASURE = Path(hwnas.__file__).parent / "measure"


def _contract_calls_bind(method, contract) -> None:
    """Every call the contract's signature allows binds to ``method``: the required parameters by position, each
    optional one by keyword and by position, with the contract's default."""
    params = list(inspect.signature(contract).parameters.values())[1:]  # drop self
    sig = inspect.signature(method)
    required = [object() for p in params if p.default is p.empty]
    optional = {p.name: p.default for p in params if p.default is not p.empty}
    sig.bind(*required, **optional)
    sig.bind(*required, *optional.values())
    for name, default in optional.items():
        assert sig.parameters[name].default == default, (method, name)


@pytest.mark.parametrize("kind", sorted(RUNNERS))
def test_every_registered_runner_satisfies_the_contract(kind):
    runner = RUNNERS[kind]()
    assert isinstance(runner, Runner)  # names only (a runtime-checkable Protocol); the signatures:
    for name in ("reachable", "run"):
        _contract_calls_bind(getattr(runner, name), getattr(Runner, name))


def test_the_agent_runner_refuses_a_drift_reference(tmp_path):
    from types import SimpleNamespace

    from hwnas.errors import HwnasError

    with pytest.raises(HwnasError, match="drift reference is not supported over the agent"):
        RUNNERS["agent"]().run(tmp_path / "m.onnx", SimpleNamespace(name="board"), reference=tmp_path / "r.onnx")


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
