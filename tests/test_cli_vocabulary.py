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
