import subprocess
import sys

import pytest

from hwnas.cli.main import app, main

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def _commands():
    import typer.main

    return typer.main.get_command(app).commands


def test_every_command_has_help_with_an_example():
    cmds = _commands()
    assert {"spaces", "export"} <= set(cmds)
    for name, cmd in cmds.items():
        assert cmd.help and "Example: hwnas " + name in cmd.help, name


def test_spaces_lists_sizes(capsys):
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert "nb201" in out and "15,625" in out and "mobilenet" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "--space", "nope", "--arch", CELL, "--out", "x.onnx"], "unknown search space 'nope'"),
        (["export", "--arch", "|bad|", "--out", "x.onnx"], "malformed arch string"),
        (["export", "--arch", "genes:0,0,0,0,0,9", "--out", "x.onnx"], "gene 5 = 9 is out of range"),
        (["export", "--arch", CELL, "--out", "/nonexistent-dir/x.onnx"], "does not exist"),
        (["export", "--arch", CELL, "--format", "pb", "--out", "x.onnx"], "unknown export format 'pb'"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "hwnas", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_export_command_writes_a_file(tmp_path):
    out = tmp_path / "cell.onnx"
    assert main(["export", "--arch", CELL, "--space-opt", "C=4", "--space-opt", "N=1", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("argv", [
    ["ci-check", "m.onnx", "--againts", "b.onnx"],   # a mistyped option (exit 1 would mean "regression")
    ["profile", "--n", "abc"],                        # a wrong type
    ["export"],                                       # a missing required option
    ["no-such-command"],
])
def test_usage_errors_exit_2_with_one_line_not_a_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error:" in err


def test_every_command_answers_an_unknown_flag_with_exit_2(capsys):
    for name in _commands():
        assert main([name, "--no-such-flag-xyz"]) == 2, name
        err = capsys.readouterr().err
        assert "No such option" in err and "Traceback" not in err, (name, err)
