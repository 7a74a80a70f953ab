"""Journeys with weight-sharing supernets, run as the installed ``hwnas`` command exactly as docs/supernet.md types
them (progress bar on): Once-for-All's weights scored on your own image folder during a search, and a supernet
trained with ``hwnas supernet train`` (Ctrl-C and ``--resume`` included) then searched."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from journeys import assert_search_results, read_csv, run_hwnas

pytestmark = pytest.mark.journey

# three ImageNet classes, by WordNet id as in ImageNet's own folders: tench (0), golden retriever (207), tabby (281)
WNIDS = ("n01440764", "n02099601", "n02123045")


def _image_folder(root, classes=WNIDS, n_train=4, n_val=2, size=64):
    """DIR/train/<class>/*.png and DIR/val/<class>/*.png: real PNG files of seeded noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_ofa_weights_search_an_image_folder(tmp_path):
    """OFA's own OFAMobileNetV3 (w1.0, 1,000 classes) saved as a state dict, then the command of
    docs/supernet.md. Its classifier is made to always answer output 207 (golden retriever), so every subnet is
    right on exactly the n02099601 third of the validation images: the folder's WordNet ids are mapped to
    ImageNet's outputs (as folder indices 0, 1, 2 they would score 0 %)."""
    networks = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")  # dev extra
    torch.manual_seed(0)
    ofa = networks.OFAMobileNetV3(n_classes=1000, dropout_rate=0, width_mult=1.0, ks_list=[3, 5, 7],
                                  expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    with torch.no_grad():
        ofa.classifier.linear.bias[207] = 1e4
    torch.save(ofa.state_dict(), tmp_path / "ofa_w1.pth")
    sha = hashlib.sha256((tmp_path / "ofa_w1.pth").read_bytes()).hexdigest()[:12]
    _image_folder(tmp_path / "imgs")

    ran = run_hwnas(["pareto-search", "--space", "mobilenet", "--space-opt", "input_size=64",
                     "--space-opt", "num_classes=1000", "--objective", "error", "--objective", "macs",
                     "--accuracy", "supernet:ofa_w1.pth", "--dataset", "imagefolder", "--data-dir", "imgs",
                     "--budget", "6"], cwd=tmp_path, mode="pipe").ok()
    assert "6 unique archs evaluated" in ran.text
    (out,) = (tmp_path / "runs").glob("search-*")  # no --out: runs/search-<time>
    front, evals = assert_search_results(out, n_evals=6)
    # 4 train images per class, 20 % carved for the (locked) test split: 3 per class recalibrate batch norm
    assert {r["error_source"] for r in evals} == {f"supernet:ofa-{sha}(imagefolder val, bn-recal 9)"}
    assert all(abs(float(r["error"]) - 200 / 3) < 1e-3 for r in evals)
    assert all(r["macs_source"] == "counted:graph" and float(r["macs"]) > 1e6 for r in evals)
    assert len({r["macs"] for r in evals}) > 1  # the subnets differ in size


def test_ofa_weights_without_image_folder_classes_that_name_outputs_fail_in_one_line(tmp_path):
    """A folder of 3 classes named cat/dog/owl for 1,000-output weights: which output is which is unknown."""
    networks = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")
    ofa = networks.OFAMobileNetV3(n_classes=1000, dropout_rate=0, width_mult=1.0, ks_list=[3, 5, 7],
                                  expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    torch.save(ofa.state_dict(), tmp_path / "ofa_w1.pth")
    _image_folder(tmp_path / "imgs", classes=("cat", "dog", "owl"), n_train=4, n_val=1, size=8)
    ran = run_hwnas(["pareto-search", "--space", "mobilenet", "--space-opt", "input_size=64",
                     "--space-opt", "num_classes=1000", "--objective", "error", "--objective", "macs",
                     "--accuracy", "supernet:ofa_w1.pth", "--dataset", "imagefolder", "--data-dir", "imgs",
                     "--budget", "6"], cwd=tmp_path, mode="pipe")
    assert ran.rc == 2 and "Traceback" not in ran.text, ran.text[-2000:]
    assert len(ran.err.strip().splitlines()) == 1 and "WordNet id" in ran.err
    assert not list(tmp_path.glob("runs/*/evaluations.csv"))


NB201 = ["--space", "nb201", "--space-opt", "C=8", "--space-opt", "N=1", "--space-opt", "input_size=8"]


def test_supernet_train_then_search(tmp_path):
    ran = run_hwnas(["supernet", "train", *NB201, "--dataset", "digits", "--epochs", "2", "--out",
                     "supernet.pt"], cwd=tmp_path, mode="pipe").ok()
    assert "2/2 epochs on digits" in ran.out
    digest = ran.out.strip().rsplit("hash ", 1)[1]
    assert len(digest) == 12

    run_hwnas(["pareto-search", *NB201, "--objective", "error", "--objective", "macs",
               "--accuracy", "supernet:supernet.pt", "--budget", "10", "--out", "runs/sn"], cwd=tmp_path,
              mode="tty").ok()
    front, evals = assert_search_results(tmp_path / "runs" / "sn", n_evals=10)
    assert {r["error_source"] for r in evals} == {f"supernet:{digest}(val, bn-recal 200)"}
    assert all(0 <= float(r["error"]) <= 100 for r in evals) and len({r["error"] for r in evals}) > 1
    assert all(r["macs_source"] == "counted:graph" for r in evals)
    assert read_csv(tmp_path / "runs" / "sn" / "pareto.csv") == front


def test_supernet_train_ctrl_c_then_resume_ends_with_the_unbroken_weights(tmp_path):
    """Ctrl-C in a terminal once the first epoch's checkpoint is written; ``--resume`` finishes the run with
    exactly the weights (hash) of an unbroken one."""
    from hwnas.accuracy.supernet import train_supernet
    from hwnas.spaces import create_space

    out = tmp_path / "supernet.pt"
    args = ["supernet", "train", *NB201, "--dataset", "digits", "--epochs", "4", "--train-device", "cpu",
            "--out", "supernet.pt"]
    ran = run_hwnas(args, cwd=tmp_path, mode="tty", interrupt_when=out.exists)
    assert ran.rc == 130 and "interrupted" in ran.out and "Traceback" not in ran.out, ran.out[-2000:]
    half = torch.load(out, map_location="cpu", weights_only=True)
    assert 1 <= half["epochs_done"] < 4 and not half["complete"]

    ran = run_hwnas(["supernet", "train", "--resume", "supernet.pt", "--train-device", "cpu"], cwd=tmp_path,
                    mode="pipe").ok()
    assert "4/4 epochs on digits" in ran.out
    unbroken = train_supernet(create_space("nb201", C=8, N=1, input_size=8), tmp_path / "unbroken.pt",
                              dataset="digits", recipe={"epochs": 4}, device="cpu")
    assert ran.out.strip().endswith(f"hash {unbroken['hash']}")
