"""One CLI vocabulary (docs/design.md, "One CLI vocabulary"): the new spelling of a renamed flag works; the old
one still works, hidden from --help, and prints exactly one deprecation line on stderr."""

import re
from pathlib import Path

import pytest
import typer

from hwnas.cli.main import app, main

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def _hidden_options():
    """{(command, option)} of every hidden option of every command."""
    found = set()

    def walk(cmd, name):
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{name} {sub_name}".strip())
        for p in getattr(cmd, "params", []):
            if getattr(p, "hidden", False):
                found.update((name, o) for o in p.opts)

    walk(typer.main.get_command(app), "")
    return found


def test_every_old_spelling_is_in_the_vocabulary_table_and_hidden_from_help(capsys):
    table = DESIGN.read_text().split("## One CLI vocabulary", 1)[1]
    old = {(c, o) for c, o in _hidden_options() if o not in ("--token", "--resume-at-out")}
    # --token: agent serve keeps it off --help (a secret on the command line); --resume-at-out: bare --resume
    assert {o for _, o in old} == {"--arch-file", "--accuracy-data"}
    for command, option in old:
        assert f"`{option} " in table, f"{command} {option} is not in the vocabulary table"
        assert main([*command.split(), "--help"]) == 0
        assert option not in capsys.readouterr().out


@pytest.mark.parametrize("sub", [[], ["calibrate"]])
def test_ci_check_archs_and_its_old_spelling_arch_file(tmp_path, capsys, sub):
    missing = str(tmp_path / "archs.csv")
    base = ["ci-check", *sub] + ([] if sub else ["--update-baseline", str(tmp_path / "b.json")])
    argv = [*base, "--space", "nb201"]
    assert main([*argv, "--archs", missing]) == 2
    new = capsys.readouterr().err
    assert new == f"error: arch file {missing} does not exist\n"
    assert main([*argv, "--arch-file", missing]) == 2  # the same path reaches the same code
    assert capsys.readouterr().err == "warning: --arch-file is deprecated: use --archs\n" + new
    assert main([*argv, "--archs", missing, "--arch-file", missing]) == 2
    assert capsys.readouterr().err.endswith("error: --arch-file is the old spelling of --archs: give --archs once\n")
    assert main([*base, "--archs", missing]) == 2
    assert "--archs needs --space" in capsys.readouterr().err


def test_supernet_train_resume_takes_the_checkpoint_and_the_bare_old_form_still_parses(tmp_path, capsys):
    ck = tmp_path / "sn.pt"
    assert main(["supernet", "train", "--resume", str(ck)]) == 2
    assert capsys.readouterr().err == f"error: supernet checkpoint {ck} does not exist\n"
    assert main(["supernet", "train", "--out", str(ck), "--resume"]) == 2  # old: continue --out
    assert capsys.readouterr().err == (f"warning: --resume without a path is deprecated: use --resume CHECKPOINT "
                                       f"(--resume {ck})\nerror: supernet checkpoint {ck} does not exist\n")
    assert main(["supernet", "train", "--resume", "--out", str(ck)]) == 2  # the bare form before --out too
    assert capsys.readouterr().err.endswith(f"error: supernet checkpoint {ck} does not exist\n")
    assert main(["supernet", "train", "--resume", str(ck), "--out", str(tmp_path / "other.pt")]) == 2
    assert "continues that checkpoint in place: drop --out" in capsys.readouterr().err
    assert main(["supernet", "train"]) == 2
    assert "give --out FILE (a new checkpoint) or --resume CHECKPOINT" in capsys.readouterr().err


def test_supernet_train_dataset_and_its_old_spelling_accuracy_data(tmp_path, capsys):
    ck = tmp_path / "sn.pt"
    ck.write_bytes(b"x")  # an existing --out: refused before any training, whichever spelling named the data
    assert main(["supernet", "train", "--dataset", "digits", "--out", str(ck)]) == 2
    new = capsys.readouterr().err
    assert re.fullmatch(r"error: .*already exists: continue it with --resume .*\n", new)
    assert main(["supernet", "train", "--accuracy-data", "digits", "--out", str(ck)]) == 2
    assert capsys.readouterr().err == "warning: --accuracy-data is deprecated: use --dataset\n" + new
    assert main(["supernet", "train", "--accuracy-data", "digits", "--dataset", "digits", "--out", str(ck)]) == 2
    assert "give --dataset once" in capsys.readouterr().err


def _all_flags():
    flags = set()

    def walk(cmd):
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)
        for p in getattr(cmd, "params", []):
            flags.update(getattr(p, "opts", []))

    walk(typer.main.get_command(app))
    return flags


def test_library_errors_name_parameters_and_the_cli_words_them_as_flags(capsys):
    import numpy as np

    from hwnas.accuracy.training import Recipe
    from hwnas.ci.ab import MeasureSettings
    from hwnas.ci.check import check_policy
    from hwnas.ci.stats import Thresholds
    from hwnas.cli.main import as_flags
    from hwnas.errors import ParameterError
    from hwnas.predictors.active import propose_next
    from hwnas.spaces import create_space

    calls = [(lambda: propose_next(create_space("nb201"), [], 0, np.random.default_rng(0)), "k must be at least 1, got 0"),
             (lambda: Recipe(batch_size=1), "batch_size must be >= 2 (batch norm), got 1"),
             (lambda: Thresholds(delta=20), "delta 20: expected a fraction such as 0.05"),
             (lambda: MeasureSettings(max_rounds=1), "max_rounds 1: must be >= 2"),
             (lambda: check_policy("maybe"), "inconclusive 'maybe': expected one of exit3, pass, fail")]
    worded = []
    for call, message in calls:
        with pytest.raises(ParameterError) as exc:
            call()
        assert str(exc.value) == message  # the library speaks Python
        worded.append(as_flags(exc.value))
    assert worded == ["--k must be at least 1, got 0", "--batch-size must be >= 2 (batch norm), got 1",
                      "--delta 20: expected a fraction such as 0.05", "--max-rounds 1: must be >= 2",
                      "--inconclusive 'maybe': expected one of exit3, pass, fail"]
    # and on the command line: one line naming the flag, exit 2
    assert main(["ci-check", "m.onnx", "--against", "m.onnx", "--delta", "20"]) == 2
    assert capsys.readouterr().err == "error: --delta 20.0: expected a fraction such as 0.05\n"


def _raise_strings(text: str):
    """(line, string) for every string constant (f-string parts included) inside a ``raise`` statement."""
    import ast

    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for n in ast.walk(node.exc):
                if isinstance(n, ast.Constant) and isinstance(n.value, str):
                    yield node.lineno, n.value


LIBRARY = [f for f in sorted((Path(__file__).resolve().parents[1] / "hwnas").rglob("*.py"))
           if "cli" not in f.relative_to(Path(__file__).resolve().parents[1] / "hwnas").parts[:1]]
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Raises outside hwnas/cli/ that may name a flag, each with its reason (none needed so far: a suggested command
# line, ``hwnas fit-predictor --device D`` or ``ray start --resources ...``, is a command to run, not a flag of
# this call, and passes the check).
FLAGS_ALLOWED_IN_RAISES: dict[str, str] = {}


def _flags_in_raises(path_name: str, text: str) -> list[str]:
    """``path:line '--flag'`` for each flag a raise's message names, except inside a suggested ``hwnas ...`` or
    ``ray start ...`` command line (the flag then belongs to that command)."""
    out = []
    for line, s in _raise_strings(text):
        for m in _FLAG.finditer(s):
            if not re.search(r"(hwnas|ray start) ", s[:m.start()]):
                out.append(f"{path_name}:{line} {m.group()!r}")
    return out


def test_the_library_speaks_python_no_raise_outside_the_cli_names_a_flag():
    """Errors raised outside hwnas/cli/ name parameters (ParameterError, or `name` in backticks in a
    ParametersError); the CLI words them as flags. A ``--flag`` in such a message fails here."""
    root = Path(__file__).resolve().parents[1]
    found = [o for f in LIBRARY for o in _flags_in_raises(f.relative_to(root).as_posix(), f.read_text())]
    found = [o for o in found if o.split(":")[0] not in FLAGS_ALLOWED_IN_RAISES]
    assert not found, "say these with parameter names (ParameterError / `name` in a ParametersError):\n" + \
        "\n".join(found)


def test_the_flag_check_catches_a_planted_raise():
    text = ('def f(x):\n    if x:\n        raise ValueError(f"{x}: give --data-dir DIR")\n'
            '    raise KeyError("train one with: hwnas fit-predictor --device d")\n')
    assert _flags_in_raises("x.py", text) == ["x.py:3 '--data-dir'"]


def test_backticked_parameters_are_worded_as_their_flags():
    from hwnas.cli.main import as_flags, flag_of
    from hwnas.errors import ParameterError, ParametersError
    from hwnas.evaluation.executors import create_executor

    with pytest.raises(ParameterError) as exc:
        create_executor(None, "10.0.0.1:6379")
    assert str(exc.value) == "address only makes sense with `executor` ray"
    assert as_flags(exc.value) == "--address only makes sense with --executor ray"
    err = ParametersError("dataset cifar10 needs `data_dir` DIR or `download`; see `objectives` and ``x``")
    assert as_flags(err) == "dataset cifar10 needs --data-dir DIR or --download; see --objective and ``x``"
    from hwnas.errors import HwnasError

    wrapped = HwnasError(f"store row 3: {err}")  # wrapped in another error's message, still worded as flags
    assert as_flags(wrapped) == "store row 3: " + as_flags(err)
    assert (flag_of("space_opt"), flag_of("objectives"), flag_of("token")) == ("--space-opt", "--objective",
                                                                               "--token-file")
    import pickle

    again = pickle.loads(pickle.dumps(ParameterError("budget", "must be >= 1, got 0")))
    assert (again.name, again.problem, as_flags(again)) == ("budget", "must be >= 1, got 0", "--budget must be >= 1, got 0")


def test_every_parameter_error_names_a_flag_of_the_cli():
    """``ParameterError("name", ...)`` and a backticked `name` in any raise: the CLI words them as ``--name`` (or
    the flag main.FLAG_OF gives), so that flag must exist."""
    from hwnas.cli.main import flag_of

    texts = [f.read_text() for f in (Path(__file__).resolve().parents[1] / "hwnas").rglob("*.py")]
    names = {m for t in texts for m in re.findall(r'ParameterError\(\s*"(\w+)"', t)}
    assert len(names) >= 10
    backticked = {m for t in texts for _, s in _raise_strings(t) for m in re.findall(r"(?<!`)`([a-z][a-z0-9_]*)`(?!`)", s)}
    assert {"data_dir", "space_opt", "out", "budget"} <= backticked
    flags = _all_flags()
    assert not {n for n in names | backticked if flag_of(n) not in flags}
