"""Weight-sharing supernets: training, kill/resume, subnet scoring, wrong-checkpoint errors, CLI (tiny settings),
and Once-for-All compatibility: OFA's own OFAMobileNetV3 state dict, loaded through hwnas, gives the same logits
(skipped when the ``ofa`` package of the dev extra is not installed)."""

import numpy as np
import pytest
import torch

from hwnas.accuracy.supernet import build_supernet, load_ofa_state_dict, supernet_values, train_supernet
from hwnas.accuracy.supernet.evaluate import export_subnet
from hwnas.accuracy.supernet.train import read_checkpoint, torch_threads
from hwnas.cli.main import main
from hwnas.errors import HwnasError
from hwnas.spaces import create_space


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core box more threads make these tiny convolutions 10x slower."""
    with torch_threads(1):
        yield


TINY = {"C": 4, "N": 1, "input_size": 8}
RECIPE = {"epochs": 2, "batch_size": 128, "seed": 3}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted 2-epoch nb201 supernet on digits (shared by the tests of this module)."""
    space = create_space("nb201", **TINY)
    path = tmp_path_factory.mktemp("sn") / "full.pt"
    meta = train_supernet(space, path, recipe=RECIPE)
    return space, path, meta


def test_checkpoint_records_space_data_recipe_and_hash(trained):
    space, path, meta = trained
    ckpt = read_checkpoint(path)
    assert ckpt["space"] == "nb201" and ckpt["space_config"] == space.config() and ckpt["dataset"] == "digits"
    assert ckpt["recipe"]["epochs"] == 2 and ckpt["recipe"]["seed"] == 3
    assert ckpt["complete"] and ckpt["epochs_done"] == 2 and len(ckpt["history"]) == 2
    assert ckpt["hash"] == meta["hash"] and len(meta["hash"]) == 12


def test_kill_and_resume_gives_the_same_checkpoint(trained, tmp_path):
    space, full_path, meta = trained
    path = tmp_path / "broken.pt"

    def kill_in_epoch_2(info):
        if info["epoch"] == 2 and info["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet(space, path, recipe=RECIPE, progress=kill_in_epoch_2)
    half = read_checkpoint(path)
    assert half["epochs_done"] == 1 and not half["complete"]
    with pytest.raises(HwnasError, match="unfinished"):
        supernet_values(space, [space.sample(np.random.default_rng(0))], path)
    with pytest.raises(HwnasError, match="already exists"):
        train_supernet(space, path, recipe=RECIPE)
    resumed = train_supernet(space, path, resume=True)
    assert resumed["hash"] == meta["hash"]
    a, b = read_checkpoint(path)["model"], read_checkpoint(full_path)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_subnet_scores_are_validation_accuracies_with_provenance(trained):
    space, path, meta = trained
    archs = space.sample_distinct(4, np.random.default_rng(1))
    values, sources = supernet_values(space, archs, path, bn_images=200)
    assert values.shape == (4,) and np.all((values >= 0) & (values <= 100))
    assert sources == [f"supernet:{meta['hash']}(val, bn-recal 200)"] * 4
    again, _ = supernet_values(space, archs, path, bn_images=200)
    np.testing.assert_array_equal(values, again)
    assert values.max() > 15  # 2 epochs on digits already beat chance (10 %) for some path


def test_extracted_subnet_matches_the_supernet_path(trained):
    space, path, _ = trained
    ckpt = read_checkpoint(path)
    net = build_supernet(space)
    net.load_state_dict(ckpt["model"])
    net.eval()
    x = torch.randn(3, 3, 8, 8)
    for arch in space.sample_distinct(5, np.random.default_rng(2)):
        with torch.no_grad():
            torch.testing.assert_close(net.extract(arch)(x), net(x, arch), rtol=0, atol=1e-6)
    sub = export_subnet(space, space.from_index(0), path)
    assert isinstance(sub, torch.nn.Module) and not sub.training


@pytest.mark.parametrize("other", [create_space("nb201", C=8, N=1, input_size=8),
                                   create_space("mobilenet", input_size=32, num_classes=10, width_mult=0.25)])
def test_checkpoint_for_other_space_settings_is_a_clear_error(trained, other):
    _, path, _ = trained
    with pytest.raises(HwnasError, match="was trained for space nb201"):
        supernet_values(other, [other.sample(np.random.default_rng(0))], path)


def test_bad_inputs_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    space = create_space("nb201", **TINY)
    with pytest.raises(HwnasError, match="cannot read"):
        supernet_values(space, [space.from_index(0)], junk)
    with pytest.raises(HwnasError, match="does not exist"):
        supernet_values(space, [space.from_index(0)], tmp_path / "missing.pt")
    with pytest.raises(HwnasError, match="no supernet for space"):
        build_supernet(create_space("dppnet"))
    with pytest.raises(HwnasError, match="unknown supernet recipe keys"):
        train_supernet(space, tmp_path / "x.pt", recipe={"epoch": 1})


def test_mobilenet_supernet_paths_and_sandwich_step():
    space = create_space("mobilenet", input_size=32, num_classes=10, width_mult=0.25)
    torch.manual_seed(0)
    net = build_supernet(space)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    net.train()
    loss = net.train_loss(x, y, np.random.default_rng(0), {"n_random": 1})
    loss.backward()
    assert torch.isfinite(loss) and net.blocks[0].transform["5to3"].grad is not None
    net.eval()
    with torch.no_grad():
        for arch in [net.largest(), net.smallest()] + space.sample_distinct(4, np.random.default_rng(1)):
            torch.testing.assert_close(net.extract(arch)(x), net(x, arch), rtol=0, atol=1e-5)


def test_cli_train_resume_and_eval(tmp_path, capsys):
    out = tmp_path / "sn.pt"
    base = ["supernet", "train", "--space", "nb201", "--space-opt", "C=4", "--space-opt", "N=1",
            "--space-opt", "input_size=8", "--dataset", "digits", "--batch-size", "256", "--no-progress"]
    assert main(base + ["--epochs", "1", "--out", str(out)]) == 0
    assert "1/1 epochs" in capsys.readouterr().out
    assert main(base + ["--epochs", "1", "--out", str(out)]) == 2  # exists: no silent overwrite
    assert f"continue it with --resume {out}" in capsys.readouterr().err
    assert main(["supernet", "train", "--resume", str(out), "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["supernet", "train", "--resume", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    # the old form: a bare --resume continues --out, with one deprecation line
    assert main(["supernet", "train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert capsys.readouterr().err.startswith("warning: --resume without a path is deprecated: use --resume CHECKPOINT")
    assert main(["supernet", "eval", "--checkpoint", str(out), "--sample", "2", "--bn-images", "100"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "arch,val_accuracy,source" and len(lines) == 3 and "(val, bn-recal 100)" in lines[1]
    assert main(["supernet", "train", "--space", "dppnet", "--out", str(tmp_path / "d.pt"), "--no-progress"]) == 2
    assert main(["supernet", "train", "--train-device", "tpu", "--out", str(tmp_path / "e.pt")]) == 2


# -- Once-for-All ------------------------------------------------------------------------------------------

def _random_ofa(width_mult, n_classes=10):
    networks = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")  # dev extra
    torch.manual_seed(0)
    net = networks.OFAMobileNetV3(n_classes=n_classes, dropout_rate=0, width_mult=width_mult,
                                  ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    with torch.no_grad():  # move everything off its initial value: transforms off identity, BN stats off 0 / 1
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("width_mult, n_subnets", [(1.0, 20), (1.2, 3)])
def test_hwnas_subnets_give_ofa_logits(tmp_path, width_mult, n_subnets):
    ofa = _random_ofa(width_mult)
    path = tmp_path / "ofa_mbv3.pth"
    torch.save({"state_dict": ofa.state_dict()}, path)  # OFA's published files wrap the state dict like this
    space = create_space("mobilenet", input_size=32, num_classes=10, width_mult=width_mult)
    net = load_ofa_state_dict(space, path).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    archs = [space.from_string("/".join([",".join(["k7e6"] * 4)] * 5))]
    archs += space.sample_distinct(n_subnets - 1, np.random.default_rng(0))
    for arch in archs:
        ofa.set_active_subnet(**net.ofa_settings(arch))
        with torch.no_grad():
            theirs = ofa(x)
            ours = net.extract(arch)(x)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


def test_ofa_checkpoint_errors(tmp_path):
    ofa = _random_ofa(1.0)
    path = tmp_path / "ofa.pth"
    torch.save(ofa.state_dict(), path)
    wider = create_space("mobilenet", input_size=32, num_classes=10, width_mult=1.2)
    with pytest.raises(HwnasError, match="width_mult"):
        load_ofa_state_dict(wider, path)
    space = create_space("mobilenet", input_size=32, num_classes=10)
    with pytest.raises(HwnasError, match="give the images"):  # ImageNet is not bundled: the caller brings the data
        supernet_values(space, [space.sample(np.random.default_rng(0))], path)
    with pytest.raises(HwnasError, match="need the mobilenet space"):
        load_ofa_state_dict(create_space("nb201"), path)


# -- Once-for-All weights scored on your images (the search's --dataset / --data-dir) -----------------------

def _ofa_file(path, space, hot_output=None):
    """A file holding an OFAMobileNetV3 state dict (OFA's key names) without the ofa package: hwnas's supernet,
    keys renamed. ``hot_output``: that output's classifier bias is huge, so every subnet predicts it."""
    from hwnas.accuracy.supernet.mobilenet import MobileNetSupernet, ofa_key

    torch.manual_seed(0)
    state = {ofa_key(k): v for k, v in MobileNetSupernet(space).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    if hot_output is not None:
        state["classifier.linear.bias"][hot_output] = 1e4
    torch.save(state, path)
    return path


def _image_folder(root, classes, n_train=3, n_val=2, size=32, grey=None):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) if grey is None else \
                    np.full((size, size, 3), grey, dtype=np.uint8)
                Image.fromarray(a).save(root / split / c / f"{i}.png")
    return root


IMAGENETTE = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
              "n03425413", "n03445777", "n03888257"]


def test_class_folders_name_the_outputs_of_pretrained_weights():
    from hwnas.accuracy.supernet.data import imagenet_wnids, output_indices

    wnids = imagenet_wnids()
    assert len(wnids) == 1000 and wnids[0] == "n01440764" and wnids[207] == "n02099601" and wnids[999] == "n15075141"
    # an ImageNet subset (Imagenette's ten WordNet ids): their ImageNet indices, not 0..9
    assert output_indices(IMAGENETTE, 10, 1000, "d").tolist() == [0, 217, 482, 491, 497, 566, 569, 571, 574, 701]
    assert output_indices(["10", "2", "7"], 3, 1000, "d").tolist() == [10, 2, 7]  # folders named by output index
    assert output_indices(["cat", "dog"], 2, 2, "d").tolist() == [0, 1]  # as many classes as outputs: label order
    assert output_indices((), 10, 10, "dataset digits").tolist() == list(range(10))
    with pytest.raises(HwnasError, match="has 3 classes but the weights have 2 outputs"):
        output_indices(["0", "1", "2"], 3, 2, "d")
    with pytest.raises(HwnasError, match="which output is which class is unknown.*WordNet id"):
        output_indices(["cat", "dog"], 2, 1000, "d")
    with pytest.raises(HwnasError, match="`dataset` imagefolder"):
        output_indices((), 10, 1000, "dataset digits")
    with pytest.raises(HwnasError, match="n09999999 are not ImageNet-1k"):
        output_indices(["n01440764", "n09999999"], 2, 1000, "d")
    with pytest.raises(HwnasError, match="names output 1000"):
        output_indices(["1000", "3"], 2, 1000, "d")
    with pytest.raises(HwnasError, match="same output"):
        output_indices(["01", "1"], 2, 1000, "d")


def test_ofa_weights_are_scored_on_an_imagenet_subset_folder(tmp_path):
    """Labels are the folders' ImageNet indices: weights that always answer output 207 (golden retriever) are
    right on exactly the golden-retriever third of the validation images."""
    from hwnas.accuracy.supernet.data import pretrained_splits
    from hwnas.fileio import sha256_file

    space = create_space("mobilenet", input_size=32, num_classes=1000)
    path = _ofa_file(tmp_path / "ofa.pth", space, hot_output=207)
    data = _image_folder(tmp_path / "imgs", ["n01440764", "n02099601", "n02123045"])
    archs = space.sample_distinct(2, np.random.default_rng(0))
    acc, prov = supernet_values(space, archs, path, dataset="imagefolder", data_root=str(data))
    np.testing.assert_allclose(acc, 100 / 3)
    assert prov == [f"supernet:ofa-{sha256_file(path)[:12]}(imagefolder val, bn-recal 6)"] * 2
    s = pretrained_splits("imagefolder", space.input_shape(), 1000, str(data))
    assert sorted(set(s.y_val.tolist())) == [0, 207, 281] and s.num_classes == 1000
    grey = pretrained_splits("imagefolder", (3, 8, 8), 1000, str(_image_folder(tmp_path / "g", ["0", "5"], grey=128)))
    expected = (128 / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])  # ImageNet's statistics
    np.testing.assert_allclose(grey.x_train[0, :, 0, 0], expected, rtol=1e-5)
    assert sorted(set(grey.y_train.tolist())) == [0, 5]


@pytest.mark.parametrize("classes, match", [(["cat", "dog"], "which output is which class is unknown"),
                                            (["0", "1", "2", "3", "4"], "has 5 classes but the weights have 4 outputs")])
def test_a_folder_whose_classes_are_not_the_weights_outputs_is_refused_before_the_search(tmp_path, capsys,
                                                                                          classes, match):
    space = create_space("mobilenet", input_size=32, num_classes=4)
    path = _ofa_file(tmp_path / "ofa.pth", space)
    data = _image_folder(tmp_path / "imgs", classes, n_train=3, n_val=1, size=8)
    rc = main(["pareto-search", "--space", "mobilenet", "--space-opt", "input_size=32", "--space-opt", "num_classes=4",
               "--objective", "error", "--objective", "macs", "--accuracy", f"supernet:{path}",
               "--dataset", "imagefolder", "--data-dir", str(data), "--budget", "3", "--out", str(tmp_path / "run"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "evaluations.jsonl").exists()


def test_search_with_a_supernet_resumes_after_a_kill_to_the_unbroken_result(trained, tmp_path):
    """End to end: a trained supernet is the accuracy source of a search; Ctrl-C mid-search, resume, same files."""
    from hwnas.search import make_config, run_search

    space, path, meta = trained
    cfg = make_config({"space": "nb201", "space_opt": TINY, "strategy": "random", "objective": ["error", "macs"],
                       "accuracy": f"supernet:{path}", "budget": 8, "seed": 1})
    full = run_search(cfg, tmp_path / "a")
    assert all(e.sources[0] == f"supernet:{meta['hash']}(val, bn-recal 200)" for e in full.evaluations)
    assert all(0 <= e.values[0] <= 100 for e in full.evaluations)

    def ctrl_c(kind, info):
        if kind == "evaluated" and info["n_evals"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path / "b", progress=ctrl_c)
    assert main(["pareto-search", "--resume", str(tmp_path / "b"), "--no-progress"]) == 0
    for name in ("evaluations.csv", "pareto.csv", "history.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name


def test_a_supernet_for_other_space_settings_is_refused_before_the_search(trained, tmp_path, capsys):
    _, path, _ = trained
    rc = main(["pareto-search", "--space", "nb201", "--space-opt", "C=8", "--space-opt", "N=1",
               "--space-opt", "input_size=8", "--objective", "error", "--objective", "macs",
               "--accuracy", f"supernet:{path}", "--budget", "4", "--out", str(tmp_path / "run"), "--no-progress"])
    assert rc == 2 and "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "run" / "evaluations.jsonl").exists()
