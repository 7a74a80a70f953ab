"""Exit codes say what happened: `profile` fails when no arch was measured, and every command's --help lists
its exit codes (issue #22 item 3)."""

import pytest
import typer.main
from click.testing import CliRunner

from hwnas.cli.main import app, main
from hwnas.spaces import create_space
from hwnas.store import MeasurementStore

TINY = ["--space-opt", "C=4", "--space-opt", "N=1"]


def _constant_archs(tmp_path, indices):
    """Archs with no path from input to output: each fails (NO_PATH) without exporting or running anything."""
    sp = create_space("nb201", C=4, N=1)
    archs = [sp.from_index(i) for i in indices]
    assert not any(sp.has_path(a) for a in archs)
    p = tmp_path / "constants.txt"
    p.write_text("\n".join(sp.to_string(a) for a in archs) + "\n")
    return p


def test_profile_exits_1_when_every_arch_fails(tmp_path, capsys):
    store = tmp_path / "m.db"
    rc = main(["profile", "--device", "host", "--space", "nb201", *TINY, "--archs",
               str(_constant_archs(tmp_path, [10, 12])), "--store", str(store), "--quick"])
    captured = capsys.readouterr()
    assert rc == 1, captured.err
    assert "no arch was measured on host: all 2 failed" in captured.err
    assert "Traceback" not in captured.err
    st = MeasurementStore(store)
    assert len(st) == 0  # nothing measured ...
    assert len(st.failures(device="host")) == 2  # ... and both failures recorded


def test_every_command_lists_its_exit_codes_in_help():
    root = typer.main.get_command(app)
    leaves = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            leaves.append(path)

    walk(root, [])
    assert len(leaves) >= 15
    runner = CliRunner()
    for path in leaves:
        res = runner.invoke(root, [*path, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
        assert res.exit_code == 0, (path, res.output)
        text = _flat(res.output)
        assert "Exit codes: 0" in text, path
        assert "2 " in text.split("Exit codes:")[1], path
    res = runner.invoke(root, ["profile", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert "1 no arch was measured" in _flat(res.output)
    res = runner.invoke(root, ["ci-check", "check", "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert "3 inconclusive" in _flat(res.output)


@pytest.mark.parametrize("argv", [["spaces", "--help"], ["profile", "--help"]])
def test_help_exits_0(argv):
    assert main(argv) == 0


def _flat(help_text: str) -> str:
    """--help text as one line: rich's box characters and line breaks gone."""
    return " ".join(help_text.replace("│", " ").split())
