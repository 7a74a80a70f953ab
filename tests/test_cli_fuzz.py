"""CLI fuzz test: for every command, seeded bad argument lists (unknown flags, wrong types, missing and empty
values, bad files) must exit 2 with a message and never a traceback. Runs in-process (hwnas.cli.main.main)."""

import inspect
import json
import random
import typing
from pathlib import Path

import typer

from hwnas.cli.main import app, main


def _info(param: inspect.Parameter):
    """(typer OptionInfo/ArgumentInfo, bare python type) of a command parameter."""
    ann, info = param.annotation, param.default
    if typing.get_origin(ann) is typing.Annotated:
        ann, *meta = typing.get_args(ann)
        info = next((m for m in meta if isinstance(m, (typer.models.OptionInfo, typer.models.ArgumentInfo))), info)
    while typing.get_origin(ann) in (typing.Union, list, typing.List):
        ann = next(a for a in typing.get_args(ann) if a is not type(None))
    return info, ann


def commands():
    """[(argv prefix, [(option names, python type, is argument)])] for every command and sub-command."""
    out = []

    def walk(t: typer.Typer, prefix):
        for c in t.registered_commands:
            fn = c.callback
            hints = typing.get_type_hints(fn, include_extras=True)
            params = []
            for name, p in inspect.signature(fn).parameters.items():
                info, kind = _info(p.replace(annotation=hints.get(name, p.annotation)))
                if isinstance(info, typer.models.ArgumentInfo):
                    params.append(((), kind, True))
                elif isinstance(info, typer.models.OptionInfo):
                    decls = [d for d in (info.param_decls or (f"--{name.replace('_', '-')}",)) if d.startswith("--")]
                    params.append((tuple(d.split("/")[0] for d in decls), kind, False))
            out.append(([*prefix, c.name or fn.__name__.replace("_", "-")], params))
        for g in t.registered_groups:
            walk(g.typer_instance, [*prefix, g.name])

    walk(app, [])
    return out


def _bad_files(tmp: Path) -> dict:
    (tmp / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (tmp / "empty.txt").write_bytes(b"")
    (tmp / "adir").mkdir()
    return {"missing": str(tmp / "no-such-file"), "binary": str(tmp / "garbage.bin"), "empty": str(tmp / "empty.txt"),
            "dir": str(tmp / "adir")}


# commands with file inputs: a base that reaches the file (other arguments valid), and the bad files each refuses
# ({X}: the bad file; {O}: a fresh output path)
FILE_CASES = [
    (["profile", "--device", "host", "--n", "1", "--archs", "{X}"], ("missing", "binary", "empty", "dir")),
    (["profile", "--device", "host", "--n", "1", "--store", "{X}"], ("binary",)),
    (["predict", "--device", "host", "--archs", "{X}", "--out", "{O}"], ("missing", "binary", "empty", "dir")),
    (["import", "latency", "{X}", "--device", "d"], ("missing", "binary", "empty", "dir")),
    (["export-measurements", "--device", "d", "--out", "{O}", "--store", "{X}"], ("binary",)),
    (["fit-predictor", "--device", "d", "--store", "{X}"], ("binary",)),
    (["propose", "--device", "d", "--k", "2", "--out", "{O}", "--store", "{X}"], ("binary",)),
    (["pareto-search", "--recipe", "{X}", "--no-progress"], ("missing", "binary", "dir")),
    (["pareto-search", "--resume", "{X}", "--no-progress"], ("missing", "binary", "empty", "dir")),
    (["report", "{X}"], ("missing", "binary", "empty", "dir")),
    (["retrain", "{X}"], ("missing", "binary", "empty", "dir")),
    (["ci-check", "--space", "nb201", "--arch-file", "{X}", "--update-baseline", "{O}"], ("missing", "binary", "dir")),
    (["ci-check", "{X}", "--update-baseline", "{O}"], ("missing", "binary", "empty")),
    (["ci-check", "m.onnx", "--baseline", "{X}"], ("missing", "binary", "empty", "dir")),
    (["ci-check", "calibrate", "{X}"], ("missing", "binary", "empty")),
    (["export", "--arch", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--out", "{X}/x/y.onnx"],
     ("missing", "binary")),
]


def cases(tmp: Path, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    files = _bad_files(tmp)
    out: list[list[str]] = []
    for prefix, params in commands():
        out.append([*prefix, f"--{rng.choice(['zz', 'no-such', 'xq'])}-{rng.randrange(10**6)}"])
        out.append([*prefix, "--"[: rng.randrange(3)] + "-" * 3 + "bogus"])
        for names, kind, is_arg in params:
            if is_arg or not names or kind is bool:
                continue
            opt = rng.choice(names)
            out.append([*prefix, opt])  # a value-taking option with no value
            if kind in (int, float):
                for bad in rng.sample(["abc", "", "1.5x", "nan-ish", "0x1g", "--", "1e", "١٢"], 3):
                    out.append([*prefix, f"{opt}={bad}"])
                if kind is int:
                    out.append([*prefix, f"{opt}=2.5"])
    for n, (argv, kinds) in enumerate(FILE_CASES):
        for kind in kinds:
            out.append([a.replace("{X}", files[kind]).replace("{O}", str(tmp / f"out{n}.csv")) for a in argv])
    return out


def test_cli_fuzz_every_bad_argument_list_exits_2_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    all_cases = cases(tmp_path)
    failures = []
    for argv in all_cases:
        try:
            rc = main(argv)
        except BaseException as exc:  # noqa: BLE001 - a traceback is exactly what this test looks for
            rc = f"raised {type(exc).__name__}: {exc}"
        cap = capsys.readouterr()
        if rc != 2 or "Traceback" in cap.err or not cap.err.strip():
            failures.append((argv, rc, cap.err.strip()[-300:]))
    with capsys.disabled():
        print(f"\nCLI fuzz: {len(all_cases)} bad argument lists over {len(commands())} commands, "
              f"{len(failures)} not answered with exit 2")
    assert not failures, "\n".join(map(str, failures[:20]))
    assert len(all_cases) > 200


# -- resume: a torn log, a changed config, poisoned replay values (issue 23 items 5-7) ---------------------------
def _resume_cases(rng: random.Random, log_lines: int) -> list[tuple[str, str, object]]:
    """(kind, what, mutation argument): torn logs are continued with a note; the rest are refused."""
    cases: list[tuple[str, str, object]] = [("torn", f"cut {k} bytes", k) for k in [1] + rng.sample(range(2, 120), 4)]
    changes = [("space", "mobilenet"), ("seed", rng.randrange(1, 100)), ("objective", ["error", "macs"]),
               ("strategy", "random"), ("strategy_opt", {"population_size": 5}), ("space_opt", {"C": 4}),
               ("accuracy", "table:/elsewhere/acc.csv"), ("epochs", 7), ("constraint", ["latency_ms@dev<=3"])]
    cases += [("config", key, value) for key, value in rng.sample(changes, 6)]
    poisons = [{"values": [-1e308, float("nan")]}, {"values": [1e308, 1.0]}, {"values": [50.0, -1.0]},
               {"values": ["abc", 1.0]}, {"values": [50.0]}, {"genes": [99] * 6}, {"space": "mobilenet"},
               {"sources": [1, 2]}, {"extras": "x"}, {"values": [101.0, 2.0]}, {"genes": "abc"}]
    cases += [("poison", json.dumps(p), (rng.randrange(2, log_lines + 1), p)) for p in poisons]
    return cases


def test_cli_fuzz_resume_cases(tmp_path, monkeypatch, capsys):
    """Every damaged or edited results directory is answered as specified: a torn last log line is cut off (or
    completed) with a note and the resume finishes; a changed config.yaml or a poisoned log line is exit 2 with
    one line and changes nothing."""
    import shutil

    import yaml

    from search_fixtures import table_args, write_nb201_tables

    monkeypatch.chdir(tmp_path)
    tables = write_nb201_tables(tmp_path)
    base = tmp_path / "base"
    assert main(table_args(tables, budget=8, population=4) + ["--out", str(base)]) == 0
    log_lines = len((base / "evaluations.jsonl").read_text().splitlines())
    failures = []
    cases = _resume_cases(random.Random(0), log_lines)
    for n, (kind, what, arg) in enumerate(cases):
        out = tmp_path / f"case{n}"
        shutil.copytree(base, out)
        log = out / "evaluations.jsonl"
        if kind == "torn":
            log.write_bytes(log.read_bytes()[:-arg])
        elif kind == "config":
            saved = yaml.safe_load((out / "config.yaml").read_text())
            (out / "config.yaml").write_text(yaml.safe_dump({**saved, what: arg}, sort_keys=False))
        else:
            line, poison = arg
            lines = log.read_text().splitlines()
            lines[line - 1] = json.dumps({**json.loads(lines[line - 1]), **poison})
            log.write_text("\n".join(lines) + "\n")
        before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        capsys.readouterr()
        try:
            rc = main(["pareto-search", "--resume", str(out), "--no-progress", "--budget", "9"])
        except BaseException as exc:  # noqa: BLE001 - a traceback is exactly what this test looks for
            rc = f"raised {type(exc).__name__}: {exc}"
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        if kind == "torn":
            try:
                records = [json.loads(x) for x in log.read_text().splitlines()]  # every line whole again
            except ValueError:
                records = []
            ok = (rc == 0 and any(x.startswith("note: ") and "evaluations.jsonl" in x for x in lines)
                  and len(records) == 1 + 9 and len({r["arch_id"] for r in records[1:]}) == 9)
        else:
            named = f"line {arg[0]}" if kind == "poison" else f"{what}: "
            ok = (rc == 2 and len(lines) == 1 and named in err
                  and {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before)
        if not ok or "Traceback" in err:
            failures.append((kind, what, rc, err.strip()[-300:]))
    with capsys.disabled():
        print(f"\nCLI fuzz (resume): {len(cases)} damaged or edited results directories, {len(failures)} not answered "
              "as specified")
    assert not failures, "\n".join(map(str, failures))
