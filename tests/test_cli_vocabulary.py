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


def test_every_parameter_error_names_a_flag_of_the_cli():
    """``ParameterError("name", ...)``: the CLI words it as ``--name``, so that flag must exist."""
    root = Path(__file__).resolve().parents[1] / "hwnas"
    names = {m for f in root.rglob("*.py") for m in re.findall(r'ParameterError\(\s*"(\w+)"', f.read_text())}
    assert len(names) >= 10
    flags = _all_flags()
    assert not {n for n in names if "--" + n.replace("_", "-") not in flags}
