"""Integrity of what hwnas loads (issue 23 items 1, 2, 11, 12, 15): predictor artifacts and supernet checkpoints
that were tampered with or are malformed are refused with one line (exit 2), never used. Planted files: a
predictor whose model.npz was dropped from card.json and rewritten, NaN weights, cards of the wrong types; a
supernet checkpoint whose weights were overwritten, a NaN tensor, missing keys, wrong shapes."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwnas.cli.main import main
from hwnas.predictors import ArtifactError, KernelPredictor, LatencyPredictor, load_predictor
from hwnas.predictors.features import cell_kernels
from hwnas.spaces import create_space

from journeys import run_hwnas

SPACE = create_space("nb201", C=4, N=1)
COST = {"relu": 0.05, "conv1x1_bn": 0.4, "conv3x3_bn": 1.1, "avgpool3x3": 0.3, "identity": 0.02, "add": 0.08,
        "fill_zeros": 0.05, "zero": 0.03}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A kernel predictor of device 'dev' fitted on planted latencies, saved once; tests copy it."""
    rng = np.random.default_rng(0)
    archs = SPACE.sample_distinct(40, rng)
    lat = [2.0 + sum(COST[t] * m for t, m in cell_kernels(a.genes, "pruned")) for a in archs]
    p = KernelPredictor(space=SPACE).fit(archs, lat).set_card(device="dev", runtime="onnxruntime")
    root = tmp_path_factory.mktemp("fitted")
    p.save(root / "latency_models" / "dev" / "nb201-kernel")
    (root / "archs.txt").write_text("\n".join(SPACE.to_string(a) for a in archs[:5]) + "\n")
    return root


@pytest.fixture
def art(fitted, tmp_path):
    shutil.copytree(fitted, tmp_path, dirs_exist_ok=True)
    return tmp_path / "latency_models" / "dev" / "nb201-kernel"


def _card(art: Path) -> dict:
    return json.loads((art / "card.json").read_text())


def _write_card(art: Path, card: dict) -> None:
    (art / "card.json").write_text(json.dumps(card))


def _rewrite_npz(path: Path, fn) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: fn(k, z[k]) for k in z.files}
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _predict(tmp_path, capsys):
    rc = main(["predict", "--device", "dev", "--archs", str(tmp_path / "archs.txt"), "--out",
               str(tmp_path / "p.csv"), "--models", str(tmp_path / "latency_models")])
    return rc, capsys.readouterr().err.strip()


def _negate(k, a):
    return -1000.0 * a if a.dtype.kind == "f" else a


# -- item 1: every file the loader reads is hashed; files it does not expect are refused; NaN refused -------------
@pytest.mark.journey
def test_model_file_dropped_from_card_and_rewritten_is_refused(art, tmp_path):
    """The issue's recipe: remove model.npz from card["files"], rewrite its floats. Before: exit 0 with
    latencies of -22970 ms and the original training data in the provenance."""
    card = _card(art)
    del card["files"]["model.npz"]
    _write_card(art, card)
    _rewrite_npz(art / "model.npz", _negate)
    r = run_hwnas(["predict", "--device", "dev", "--archs", "archs.txt", "--out", "p.csv", "--models",
                   "latency_models"], cwd=tmp_path)
    assert r.rc == 2, r.text
    assert "model.npz" in r.err and "not listed" in r.err
    assert "Traceback" not in r.text and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()


def test_unlisted_extra_file_is_refused(art, tmp_path, capsys):
    (art / "extra.npz").write_bytes(b"x")
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "'extra.npz' is not listed" in err


def test_loader_never_reads_a_file_the_card_does_not_list(art):
    """Even with the unexpected-file check out of the way (file listed nowhere and absent), a loader reading an
    unlisted file is refused: the readers themselves check."""
    card = _card(art)
    del card["files"]["kernels.json"]
    _write_card(art, card)
    (art / "kernels.json").rename(art.parent / "kernels.json.bak")
    with pytest.raises(ArtifactError, match="kernels.json' is not listed"):
        LatencyPredictor.load(art)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_are_refused_even_with_a_matching_hash(art, tmp_path, capsys, bad):
    _rewrite_npz(art / "model.npz", lambda k, a: np.full_like(a, bad) if a.dtype.kind == "f" else a)
    card = _card(art)
    card["files"]["model.npz"] = _sha(art / "model.npz")
    _write_card(art, card)
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "NaN or infinite" in err and "model.npz" in err


def test_symlinked_model_file_is_refused(art, tmp_path, capsys):
    (tmp_path / "notjson.txt").write_text("not json at all")
    (art / "kernels.json").unlink()
    (art / "kernels.json").symlink_to(tmp_path / "notjson.txt")
    card = _card(art)
    card["files"]["kernels.json"] = _sha(tmp_path / "notjson.txt")
    _write_card(art, card)
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "kernels.json" in err and "symlink" in err


# -- item 12: the card's schema; a truncated card is "corrupt card" ----------------------------------------------
CARD_EDITS = [
    ("files as a list", lambda c: c.update(files=list(c["files"]))),
    ("params as a list", lambda c: c.update(params=[1, 2])),
    ("training as a string", lambda c: c.update(training="lots")),
    ("kind as a list", lambda c: c.update(kind=["kernel"])),
    ("space_config as a string", lambda c: c.update(space_config="C=4")),
    ("count as a string", lambda c: c["training"].update(count="60")),
    ("hash not hex", lambda c: c["files"].update({"model.npz": "abc"})),
]


@pytest.mark.parametrize("what,edit", CARD_EDITS, ids=[e[0] for e in CARD_EDITS])
def test_card_of_wrong_types_is_a_corrupt_card(art, tmp_path, capsys, what, edit):
    card = _card(art)
    edit(card)
    _write_card(art, card)
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "corrupt card" in err and "Traceback" not in err, err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"graph": "pruned", "features": NaN}', "not json"])
def test_kernels_json_of_wrong_type_is_refused(art, tmp_path, capsys, content):
    (art / "kernels.json").write_text(content)
    card = _card(art)
    card["files"]["kernels.json"] = _sha(art / "kernels.json")
    _write_card(art, card)
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "kernels.json" in err and "Traceback" not in err, err


def test_truncated_card_says_corrupt_card_not_no_predictor(art, tmp_path, capsys):
    text = (art / "card.json").read_text()
    (art / "card.json").write_text(text[: len(text) // 2])
    rc, err = _predict(tmp_path, capsys)
    assert rc == 2 and "corrupt card" in err and "no latency predictor" not in err, err
    with pytest.raises(ArtifactError, match="corrupt card"):
        load_predictor("dev", root=tmp_path / "latency_models")


def test_untampered_artifact_still_predicts(art, tmp_path, capsys):
    rc, err = _predict(tmp_path, capsys)
    assert rc == 0, err
    assert (tmp_path / "p.csv").read_text().count("predicted:kernel:nb201-kernel") == 5


# -- item 2 and 11: supernet checkpoints: hash recomputed on load, schema checked before use ----------------------
TINY = ["--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1", "--space-opt", "input_size=8"]


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory):
    import torch

    from hwnas.accuracy.supernet import train_supernet
    from hwnas.accuracy.supernet.train import torch_threads

    path = tmp_path_factory.mktemp("sn") / "supernet.pt"
    with torch_threads(1):
        train_supernet(create_space("nb201", C=4, N=1, input_size=8), path,
                       recipe={"epochs": 1, "batch_size": 256, "seed": 0})
    return path, torch.load(path, map_location="cpu", weights_only=True)


def _plant(tmp_path, ckpt: dict, name="planted.pt", rehash=False) -> Path:
    import torch

    from hwnas.accuracy.supernet.train import weights_hash

    if rehash:
        ckpt["hash"] = weights_hash(ckpt, ckpt["model"])
    torch.save(ckpt, tmp_path / name)
    return tmp_path / name


def _search(tmp_path, capsys, ckpt: Path):
    rc = main(["pareto-search", *TINY, "--objective", "error", "--objective", "macs", "--accuracy",
               f"supernet:{ckpt}", "--budget", "2", "--out", str(tmp_path / "runs"), "--no-progress"])
    return rc, capsys.readouterr().err.strip()


def _resume(tmp_path, capsys, ckpt: Path):
    rc = main(["supernet", "train", "--resume", str(ckpt)])
    return rc, capsys.readouterr().err.strip()


def _overwrite(ckpt, value):
    import torch

    ckpt["model"] = {k: (torch.full_like(v, value) if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    return ckpt


@pytest.mark.journey
def test_supernet_weights_overwritten_keeping_the_hash_are_refused(supernet_ckpt, tmp_path):
    """The issue's recipe: weights set to 0.123, the stored hash kept. Before: every error 89.97 and the
    original hash in the provenance."""
    import copy

    path = _plant(tmp_path, _overwrite(copy.deepcopy(supernet_ckpt[1]), 0.123))
    r = run_hwnas(["pareto-search", *TINY, "--objective", "error", "--objective", "macs", "--accuracy",
                   f"supernet:{path.name}", "--budget", "2", "--out", "runs/sn"], cwd=tmp_path)
    assert r.rc == 2, r.text
    assert "hash" in r.err and supernet_ckpt[1]["hash"] in r.err and "modified after training" in r.err
    assert "Traceback" not in r.text and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "sn" / "pareto.csv").exists()


def test_supernet_nan_tensor_is_refused_even_with_a_matching_hash(supernet_ckpt, tmp_path, capsys):
    import copy

    ckpt = copy.deepcopy(supernet_ckpt[1])
    key = next(k for k, v in ckpt["model"].items() if v.is_floating_point())
    ckpt["model"][key] = ckpt["model"][key].clone()
    ckpt["model"][key].view(-1)[0] = float("nan")
    path = _plant(tmp_path, ckpt, rehash=True)
    for run in (_search, _resume):
        rc, err = run(tmp_path, capsys, path)
        assert rc == 2 and "NaN or infinite" in err and key in err, err


def _drop_space(c):
    del c["space"]


def _bad_shape(c):
    import torch

    key = next(k for k, v in c["model"].items() if v.ndim == 4)
    c["model"][key] = torch.zeros(1, 1, 1, 1)


MALFORMED = [
    ("missing space", _drop_space, "key 'space' is missing"),
    ("space_config as a string", lambda c: c.update(space_config="C=4"), "'space_config' must be a dict"),
    ("wrong tensor shape", _bad_shape, "has shape (1, 1, 1, 1), expected"),
    ("empty model", lambda c: c.update(model={}), "holds no weights"),
    ("model of non-tensors", lambda c: c.update(model={"a": 1}), "must map names to tensors"),
    ("recipe as a list", lambda c: c.update(recipe=[1]), "'recipe' must be a dict"),
]


@pytest.mark.parametrize("what,edit,says", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_supernet_checkpoint_is_one_line_exit_2(supernet_ckpt, tmp_path, capsys, what, edit, says):
    import copy

    ckpt = copy.deepcopy(supernet_ckpt[1])
    edit(ckpt)
    path = _plant(tmp_path, ckpt, rehash=what in ("wrong tensor shape",))
    for run in (_search, _resume):
        rc, err = run(tmp_path, capsys, path)
        assert rc == 2 and says in err and "Traceback" not in err, (run.__name__, err)
        assert len(err.splitlines()) == 1


def test_untampered_supernet_checkpoint_still_loads(supernet_ckpt):
    from hwnas.accuracy.supernet.train import read_checkpoint

    assert read_checkpoint(supernet_ckpt[0])["hash"] == supernet_ckpt[1]["hash"]


# -- item 15: a checkpoint refused for holding a pickle: one line, no torch docs URL --------------------------------
def test_checkpoint_holding_pickled_objects_is_one_line_without_a_url(tmp_path, capsys):
    import argparse

    import torch

    torch.save({"format": "hwnas-supernet/1", "x": argparse.Namespace(a=1)}, tmp_path / "pickled.pt")
    for run in (_search, _resume):
        rc, err = run(tmp_path, capsys, tmp_path / "pickled.pt")
        assert rc == 2 and "pickled Python objects (argparse.Namespace)" in err, err
        assert "http" not in err and len(err.splitlines()) == 1


# -- item 3: device names are one path component, checked by one validator in every command ------------------------
BAD_DEVICES = ["../../../elsewhere/ESCAPED", "/abs/dir", "", ".", "..", "a/b", "-rf", "*", "dev\nx"]


@pytest.mark.journey
def test_traversal_device_name_is_refused_and_nothing_escapes(fitted, tmp_path):
    """The issue's recipe through the installed command: before, import then fit-predictor wrote
    latency_models/../../../elsewhere/ESCAPED outside latency_models/."""
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    lines = (fitted / "archs.txt").read_text().split()
    (work / "lat.csv").write_text("arch,latency_ms\n" + "".join(f"{a},{1 + i}\n" for i, a in enumerate(lines)))
    bad = "../../../elsewhere/ESCAPED"
    for args in (["import", "latency", "lat.csv", "--device", bad, "--space-opt", "C=4", "--space-opt", "N=1",
                  "--store", "m.db"],
                 ["fit-predictor", "--device", bad, "--kind", "lut", "--store", "m.db"]):
        r = run_hwnas(args, cwd=work)
        assert r.rc == 2 and "a device name is letters" in r.err, r.text
        assert "Traceback" not in r.text and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "a" / "elsewhere").exists() and not (work / "latency_models").exists()


@pytest.mark.parametrize("bad", BAD_DEVICES, ids=repr)
def test_every_device_taking_command_refuses_a_bad_name(tmp_path, monkeypatch, capsys, bad):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lat.csv").write_text("arch,latency_ms\nx,1\n")
    argvs = [["import", "latency", "lat.csv", "--device", bad],
             ["fit-predictor", "--device", bad],
             ["predict", "--device", bad, "--archs", "lat.csv", "--out", "p.csv"],
             ["propose", "--device", bad, "--k", "1", "--out", "p.csv"],
             ["export-measurements", "--device", bad, "--out", "p.csv"],
             ["pareto-search", "--objective", "error", "--objective", f"latency_ms@{bad}", "--budget", "2",
              "--out", "runs", "--no-progress"],
             ["pareto-search", "--objective", "error", "--objective", "latency_ms", "--latency",
              f"{bad}=predictor", "--budget", "2", "--out", "runs", "--no-progress"]]
    for argv in argvs:
        if argv[0] == "pareto-search" and bad in ("", "dev\nx") and "--latency" in argv:
            continue  # "=predictor" without a device is the default source, not a device name
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "Traceback" not in err, (argv, err)
        if argv[0] != "pareto-search" or bad not in ("",):
            assert "device" in err, (argv, err)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "p.csv").exists()


def test_device_profile_name_is_checked_too(tmp_path):
    from hwnas.measure.device_profile import ProfileError, validate_profile

    with pytest.raises(ProfileError, match="a device name is letters"):
        validate_profile({"name": "../x", "runtime": "onnxruntime"}, where="p.yaml")
