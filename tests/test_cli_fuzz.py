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
    (["ci-check", "--space", "nb201", "--archs", "{X}", "--update-baseline", "{O}"], ("missing", "binary", "dir")),
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


# -- artifacts: tampered predictor directories, tampered supernet checkpoints, traversal device names (issue 23) ---
def _tamper_predictor(art: Path, how: str) -> None:
    import hashlib

    import numpy as np

    card = json.loads((art / "card.json").read_text())

    def rewrite(fn):
        with np.load(art / "model.npz", allow_pickle=False) as z:
            arrays = {k: fn(z[k]) if z[k].dtype.kind == "f" else z[k] for k in z.files}
        with open(art / "model.npz", "wb") as fh:
            np.savez(fh, **arrays)

    def rehash(name):
        card["files"][name] = hashlib.sha256((art / name).read_bytes()).hexdigest()

    if how == "dropped and rewritten":
        del card["files"]["model.npz"]
        rewrite(lambda a: -1000 * a)
    elif how == "rewritten":
        rewrite(lambda a: a + 1)
    elif how == "nan weights":
        rewrite(lambda a: np.full_like(a, np.nan))
        rehash("model.npz")
    elif how == "extra file":
        (art / "evil.npz").write_bytes(b"x")
    elif how == "kernels.json a list":
        (art / "kernels.json").write_text("[1, 2, 3]")
        rehash("kernels.json")
    elif how == "kernels.json a symlink":
        (art / "kernels.json").unlink()
        (art / "kernels.json").symlink_to(art.parents[2] / "garbage.bin")
        rehash("kernels.json")
    elif how == "truncated card":
        text = (art / "card.json").read_text()
        (art / "card.json").write_text(text[: len(text) // 3])
        return
    else:  # a card field of the wrong type
        key, value = how.split("=", 1)
        card[key] = json.loads(value)
    (art / "card.json").write_text(json.dumps(card))


PREDICTOR_TAMPERS = ["dropped and rewritten", "rewritten", "nan weights", "extra file", "kernels.json a list",
                     "kernels.json a symlink", "truncated card", 'files=["model.npz"]', 'params=[1]',
                     'training="x"', 'kind=["kernel"]', 'space_config="C=4"', 'feature_schema=3']


def _tamper_checkpoint(ckpt: dict, how: str) -> dict:
    import torch

    from hwnas.accuracy.supernet.train import weights_hash

    first = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and v.ndim == 4)
    if how == "weights overwritten":
        ckpt["model"] = {k: torch.full_like(v, 0.123) if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    elif how == "nan tensor":
        ckpt["model"][first] = torch.full_like(ckpt["model"][first], float("nan"))
        ckpt["hash"] = weights_hash(ckpt, ckpt["model"])
    elif how == "wrong shape":
        ckpt["model"][first] = torch.zeros(2, 2, 1, 1)
        ckpt["hash"] = weights_hash(ckpt, ckpt["model"])
    elif how == "empty model":
        ckpt["model"] = {}
    elif how == "hash edited":
        ckpt["hash"] = "0" * 12
    else:
        key, _, value = how.partition("=")
        if value:
            ckpt[key] = json.loads(value)
        else:
            del ckpt[key]
    return ckpt


CHECKPOINT_TAMPERS = ["weights overwritten", "nan tensor", "wrong shape", "empty model", "hash edited", "space",
                      "model", 'space_config="C=4"', 'recipe=[1]', 'epochs_done="1"', 'dataset=3']
TRAVERSAL_DEVICES = ["../../../elsewhere/ESCAPED", "/abs/dir", "", "..", ".", "a/b", "..\\x", "-x", "dev*"]


def test_cli_fuzz_artifact_cases(tmp_path, monkeypatch, capsys):
    """Tampered predictor directories, tampered supernet checkpoints and path-like device names: exit 2, one line,
    no traceback, nothing written."""
    import copy
    import shutil

    import numpy as np
    import torch

    from hwnas.accuracy.supernet import build_supernet, make_recipe
    from hwnas.accuracy.supernet.train import FORMAT, weights_hash
    from hwnas.predictors import KernelPredictor
    from hwnas.spaces import create_space

    monkeypatch.chdir(tmp_path)
    rng = random.Random(0)
    _bad_files(tmp_path)
    sp = create_space("nb201", C=4, N=1, input_size=8)
    archs = sp.sample_distinct(30, np.random.default_rng(0))
    (tmp_path / "archs.txt").write_text("\n".join(sp.to_string(a) for a in archs[:3]) + "\n")
    clean = tmp_path / "clean" / "dev" / "nb201-kernel"
    KernelPredictor(space=sp).fit(archs, [1.0 + sum(a.genes) for a in archs]).set_card(device="dev").save(clean)
    torch.manual_seed(0)
    net = build_supernet(sp)
    good = {"format": FORMAT, "space": "nb201", "space_config": sp.config(), "dataset": "digits",
            "recipe": make_recipe(epochs=1), "epochs_done": 1, "complete": True, "history": [], "created": "now",
            "model": dict(net.state_dict()), "optimizer": {}, "scheduler": {}}
    good["hash"] = weights_hash(good, good["model"])
    space_args = ["--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt", "input_size=8"]

    cases: list[tuple[str, list[str]]] = []
    for n, how in enumerate(PREDICTOR_TAMPERS):
        root = tmp_path / f"pred{n}"
        shutil.copytree(clean.parent.parent, root)
        _tamper_predictor(root / "dev" / "nb201-kernel", how)
        cmd = rng.choice([["predict", "--device", "dev", "--archs", "archs.txt", "--out", f"p{n}.csv", "--models",
                           str(root)],
                          ["predict", "--device", "dev", "--archs", "archs.txt", "--out", f"p{n}.csv", "--predictor",
                           str(root / "dev" / "nb201-kernel")]])
        cases.append((f"predictor {how}", cmd))
    for n, how in enumerate(CHECKPOINT_TAMPERS):
        path = tmp_path / f"ckpt{n}.pt"
        torch.save(_tamper_checkpoint(copy.deepcopy(good), how), path)
        cases.append((f"checkpoint {how} (search)", ["pareto-search", *space_args, "--objective", "error",
                                                     "--objective", "macs", "--accuracy", f"supernet:{path}",
                                                     "--budget", "2", "--out", f"runs{n}", "--no-progress"]))
        cases.append((f"checkpoint {how} (resume)", ["supernet", "train", "--resume", str(path)]))
    for bad in TRAVERSAL_DEVICES:
        cases += [(f"device {bad!r}", argv) for argv in (
            ["import", "latency", str(tmp_path / "archs.txt"), "--device", bad],
            ["fit-predictor", "--device", bad],
            ["predict", "--device", bad, "--archs", "archs.txt", "--out", "p.csv"],
            ["propose", "--device", bad, "--k", "1", "--out", "p.csv"],
            ["export-measurements", "--device", bad, "--out", "p.csv"],
            ["pareto-search", "--objective", "error", "--objective", f"latency_ms@{bad}", "--out", "r", "--no-progress"])]
    failures = []
    for what, argv in cases:
        capsys.readouterr()
        try:
            rc = main(argv)
        except BaseException as exc:  # noqa: BLE001 - a traceback is exactly what this test looks for
            rc = f"raised {type(exc).__name__}: {exc}"
        err = capsys.readouterr().err.strip()
        if rc != 2 or "Traceback" in err or len(err.splitlines()) != 1:
            failures.append((what, rc, err[-300:]))
    written = list(tmp_path.glob("p*.csv")) + list(tmp_path.glob("*/pareto.csv")) + list(tmp_path.glob("latency_models"))
    with capsys.disabled():
        print(f"\nCLI fuzz (artifacts): {len(cases)} tampered artifacts and bad device names, {len(failures)} not "
              "answered with exit 2 and one line")
    assert not failures, "\n".join(map(str, failures))
    assert not written and not (tmp_path.parent / "elsewhere").exists()
