"""The monas_condensenet, monas_alexnet and dppnet spaces: genes, strings, build, costs, ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.contracts import InvalidArchError
from hwnas.spaces import SPACES, create_space

TINY = {
    "monas_condensenet": dict(depth_choices=(1, 2), growth_choices=(4, 8), input_size=16),
    "monas_alexnet": dict(layers=3, filter_choices=(4, 8), kernel_choices=(1, 3), input_size=16),
    "dppnet": dict(max_length=3, depths=(1, 1), growths=(4, 8), input_size=16),
}


def test_spaces_are_registered():
    assert {"monas_condensenet", "monas_alexnet", "dppnet"} <= set(SPACES)


@pytest.mark.parametrize("name", sorted(TINY))
def test_sample_round_trip_build_and_costs(name, rng):
    sp = create_space(name, **TINY[name])
    ids = set()
    for _ in range(6):
        a = sp.sample(rng)
        assert sp.from_string(sp.to_string(a)) == a
        assert sp.mutate(a, rng) != a
        ids.add(a.arch_id)
    model = sp.build(a)
    out = model.eval()(torch.zeros(2, *sp.input_shape()))
    assert out.shape == (2, 10)
    c = sp.static_costs(a)
    assert c.params == sum(p.numel() for p in model.parameters()) and c.macs > 0


def test_condensenet86_matches_the_published_size():
    """CondenseNet-86 (G=C=4) on CIFAR-10: 0.52 M parameters, 65 M FLOPs (mult-adds) in Huang et al. 2018."""
    sp = create_space("monas_condensenet")
    costs = sp.static_costs(sp.from_string("d14-14-14_g8-16-32"))
    assert round(costs.params / 1e6, 2) == 0.52
    assert 55e6 < costs.macs < 70e6  # we count conv + linear mult-adds of the condensed network


def test_dppnet_condensenet_cell_equals_monas_condensenet():
    dp = create_space("dppnet", depths=(2, 2), growths=(4, 8), input_size=16)
    mc = create_space("monas_condensenet", stages=2, depth_choices=(2,), growth_choices=(4, 8), input_size=16)
    a = dp.from_string("bn_relu:lgconv1x1,bn_relu:gconv3x3")
    b = mc.from_string("d2-2_g4-8")
    assert dp.static_costs(a) == mc.static_costs(b)


def test_dppnet_layers_length_and_canonical_genes():
    sp = create_space("dppnet", **TINY["dppnet"])
    assert sp.layer_choices() == 18 and sp.size() == 3 * (18 + 18**2 + 18**3)  # x 3 tails
    a = sp.from_layers([4, 7])
    assert sp.layers(a) == [4, 7] and sp.to_string(a) == "bn_relu:lgconv1x1,bn:conv3x3"
    genes = list(a.genes)
    genes[5:7] = [2, 5]  # an inactive slot (length 2): canonicalised away
    assert sp.make(genes) == a
    kinds = {type(m).__name__ for m in sp.build(sp.from_string("identity:dsconv3x3,bn:gconv1x1")).modules()}
    assert "LearnedGroupConv1x1" not in kinds and "Conv2d" in kinds
    with pytest.raises(InvalidArchError):
        sp.from_layers([1, 2, 3, 4])
    with pytest.raises(InvalidArchError, match="bad layer"):
        sp.from_string("bn_relu:conv5x5")


def test_dppnet_single_layers_and_tail_norm():
    """One-layer view: Norm, Conv, Norm, ...; an odd count ends in a tail Norm on the cell's output."""
    sp = create_space("dppnet", **TINY["dppnet"])
    assert [sp.single_layer_choices(i) for i in range(4)] == [3, 6, 3, 6]
    a = sp.from_single_layers([0, 4, 1])
    assert sp.to_string(a) == "bn_relu:lgconv1x1,bn" and sp.from_string("bn_relu:lgconv1x1,bn") == a
    assert sp.single_layers(a) == [0, 4, 1] and sp.layers(a) == [4]
    assert sp.from_single_layers([0, 4, 2]) == sp.from_single_layers([0, 4])  # a trailing identity is no layer
    b = sp.from_single_layers([0, 4, 0, 3])
    assert sp.to_string(b) == "bn_relu:lgconv1x1,bn_relu:gconv3x3"
    tail_bn = [m for m in sp.build(a).modules() if type(m).__name__ == "BatchNorm2d"]
    assert len(tail_bn) > len([m for m in sp.build(sp.from_single_layers([0, 4])).modules()
                               if type(m).__name__ == "BatchNorm2d"])
    for bad in ([0], [0, 6], [3, 1], [0, 1, 0, 1, 0, 1, 0, 1]):
        with pytest.raises(InvalidArchError):
            sp.from_single_layers(bad)
    with pytest.raises(InvalidArchError, match="bad tail"):
        sp.from_string("bn_relu:conv1x1,identity")


def test_monas_strings_and_settings_errors():
    sp = create_space("monas_alexnet")
    assert sp.to_string(sp.from_string("f64k5-f64k5-f48k3-f48k3-f36k3")) == "f64k5-f64k5-f48k3-f48k3-f36k3"
    with pytest.raises(InvalidArchError, match="filters must be in"):
        sp.from_string("f65k5-f64k5-f48k3-f48k3-f36k3")
    with pytest.raises(InvalidArchError, match="malformed"):
        create_space("monas_condensenet").from_string("14-14-14")
    with pytest.raises(InvalidArchError, match="distinct"):
        create_space("monas_alexnet", filter_choices="8-8")
    assert create_space("dppnet", depths="2-2", growths="4-8").depths == (2, 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_onnx_export_runs_and_matches_torch(name, tmp_path):
    from hwnas.export import ExportSettings, build_model, export_arch
    from hwnas.runtimes import open_session

    sp = create_space(name, **TINY[name])
    a = sp.sample(np.random.default_rng(3))
    if name == "dppnet":  # the learned group conv (index-select) and depthwise separable conv
        a = sp.from_string("bn_relu:lgconv1x1,bn:dsconv3x3,identity:gconv3x3")
    path = export_arch(sp, a, ExportSettings(format="onnx"), cache_dir=tmp_path)
    x = np.random.default_rng(1).standard_normal((1, *sp.input_shape())).astype(np.float32)
    with torch.no_grad():
        ref = build_model(sp, a)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(open_session(path).run(x), ref, rtol=1e-4, atol=1e-4)
