import hashlib
from importlib import resources

import numpy as np
import pytest
import torch

from hwnas.contracts import Arch, InvalidArchError
from hwnas.errors import UnknownNameError
from hwnas.spaces import SPACES, arch_from_text, create_space
from hwnas.spaces.base import count_costs
from hwnas.spaces.nb201 import N_CELLS

# Published NAS-Bench-201 index order: these two rows are the first of the benchmark's meta_archs list.
NB201_INDEX_0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
NB201_INDEX_1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ORDER_SHA256 = "1d3bb98de011b645ca1cf0585b09293d60b9456cac5d10e6ca296bbb3c55513e"


def test_nb201_order_file_is_the_verified_permutation():
    data = np.load(resources.files("hwnas.spaces").joinpath("nb201_order.npy"), allow_pickle=False)
    assert hashlib.sha256(data.astype(np.uint16).tobytes()).hexdigest() == ORDER_SHA256


def test_nb201_known_indices():
    sp = create_space("nb201")
    assert sp.to_string(sp.from_index(0)) == NB201_INDEX_0
    assert sp.to_string(sp.from_index(1)) == NB201_INDEX_1
    assert sp.index(sp.from_string(NB201_INDEX_1)) == 1


def test_nb201_all_cells_round_trip_with_unique_ids():
    sp = create_space("nb201")
    archs = sp.all_archs()
    assert len(archs) == N_CELLS == sp.size()
    strings = set()
    ids = set()
    for i, a in enumerate(archs):
        s = sp.to_string(a)
        back = sp.from_string(s)
        assert back == a and sp.index(back) == i and sp.make(back.genes) == a
        strings.add(s)
        ids.add(a.arch_id)
    assert len(strings) == len(ids) == N_CELLS


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        "|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
        "none~0+none~0|none~1+none~0|none~1|none~2",
    ],
)
def test_nb201_malformed_strings_raise(bad):
    with pytest.raises(InvalidArchError):
        create_space("nb201").from_string(bad)


def test_out_of_range_genes_raise():
    sp = create_space("nb201")
    with pytest.raises(InvalidArchError, match="gene 2"):
        sp.make([0, 0, 5, 0, 0, 0])
    with pytest.raises(InvalidArchError, match="expected 6 genes"):
        sp.make([0, 0])
    with pytest.raises(InvalidArchError):
        arch_from_text(sp, "genes:a,b")


def test_unknown_space():
    with pytest.raises(UnknownNameError, match="unknown search space 'nope'"):
        create_space("nope")


@pytest.mark.parametrize("name", ["nb201", "mobilenet"])
def test_sample_mutate_crossover_stay_valid(name, rng):
    sp = create_space(name)
    for _ in range(50):
        a, b = sp.sample(rng), sp.sample(rng)
        m = sp.mutate(a, rng)
        c = sp.crossover(a, b, rng)
        for x in (a, m, c):
            assert sp.make(x.genes) == x
            assert sp.from_string(sp.to_string(x)) == x
        assert m != a
        assert all(ga == gc or gb == gc for ga, gb, gc in zip(a.genes, b.genes, c.genes))


def test_sampling_is_seeded():
    sp = create_space("mobilenet")
    a = [sp.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]


def test_mobilenet_inactive_genes_are_canonical():
    sp = create_space("mobilenet")
    genes = [0] * len(sp.cardinalities())  # every stage depth 2
    other = list(genes)
    other[sp._block_slot(0, 3)] = 2  # a kernel gene of an inactive block
    assert sp.make(genes) == sp.make(other)
    assert sp.make(genes).arch_id == sp.make(other).arch_id


def test_mobilenet_string_round_trip_and_errors():
    sp = create_space("mobilenet")
    s = "k3e4,k5e6/k3e3,k3e3,k7e6/k5e4,k5e4/k7e3,k7e3,k7e3,k7e3/k3e6,k3e6"
    a = sp.from_string(s)
    assert sp.to_string(a) == s
    assert [len(st) for st in sp.decode(a)] == [2, 3, 2, 4, 2]
    for bad in ["k3e4", "k3e4/k3e4/k3e4/k3e4/k3e4", "k4e4,k3e3/" * 4 + "k3e3,k3e3", "x,y/" * 4 + "z,w"]:
        with pytest.raises(InvalidArchError):
            sp.from_string(bad)


def test_nb201_build_matches_skeleton_and_none_edges():
    sp = create_space("nb201", C=8, N=1)
    a = sp.from_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    net = sp.build(a)
    y = net(torch.randn(2, 3, 32, 32))
    assert y.shape == (2, 10)
    # an all-'none' cell outputs zeros, so the cells contribute nothing and two inputs give equal logits
    net.eval()
    x1, x2 = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    assert not sp.has_path(a)
    assert torch.allclose(net(x1), net(x2))
    b = sp.from_string(NB201_INDEX_1)
    assert sp.has_path(b)


def test_nb201_params_match_published_benchmark():
    # NAS-Bench-201 reports 1.532 MB of params (CIFAR-10, 10 classes) for the all-3x3-conv cell and
    # 0.073 MB for the all-skip cell (parameters counted in millions, as in the benchmark's API).
    sp = create_space("nb201")
    conv = sp.from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    skip = sp.from_string("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")
    assert round(sp.static_costs(conv).params / 1e6, 3) == 1.532
    assert round(sp.static_costs(skip).params / 1e6, 3) == 0.073


def test_macs_counted_from_graph():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    costs = count_costs(net, (3, 16, 16))
    assert costs.macs == 16 * 16 * 8 * 3 * 9 + 16 * 16 * 8 * 1 * 9 + 8 * 4
    assert costs.params == sum(p.numel() for p in net.parameters())
    assert costs.flops == 2 * costs.macs


def test_mobilenet_costs_in_ofa_range():
    # OFA's MobileNetV3 space spans roughly 150-600 M MACs and 4-10 M params at 224x224.
    sp = create_space("mobilenet")
    small = sp.from_string("/".join(["k3e3,k3e3"] * 5))
    big = sp.from_string("/".join(["k7e6,k7e6,k7e6,k7e6"] * 5))
    cs, cb = sp.static_costs(small), sp.static_costs(big)
    assert 100e6 < cs.macs < cb.macs < 700e6
    assert 2e6 < cs.params < cb.params < 12e6


def test_arch_ids_are_stable():
    # a stable hash: fixed across processes and versions (it keys caches and the measurement store)
    assert Arch("nb201", (0, 1, 2, 3, 4, 0)).arch_id == Arch("nb201", [0, 1, 2, 3, 4, 0]).arch_id
    assert Arch("nb201", (0, 1, 2, 3, 4, 0)).arch_id == "77857a0d932faa3f"  # sha1("nb201:0,1,2,3,4,0")[:16]


def test_nb201_input_size_must_halve_twice():
    with pytest.raises(InvalidArchError, match="multiple of 4"):
        create_space("nb201", input_size=33)
    sp = create_space("nb201", C=4, N=1, input_size=16)
    assert sp.build(sp.from_index(1))(torch.randn(1, 3, 16, 16)).shape == (1, 10)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_satisfies_the_search_space_contract(name):
    from hwnas.contracts import SearchSpace

    space = create_space(name)
    assert isinstance(space, SearchSpace), f"{name} lacks a SearchSpace method"
    a = space.sample(np.random.default_rng(0))
    simple = space.simplify(a)
    assert space.check(simple) == simple and isinstance(space.has_path(a), bool)
    assert space.equivalence_key(a) == space.equivalence_key(simple)  # simplify keeps the function


def test_generic_spaces_know_nothing_beyond_their_genes():
    space = create_space("mobilenet")
    a = space.sample(np.random.default_rng(1))
    assert space.simplify(a) is a and space.equivalence_key(a) == a.arch_id and space.has_path(a)


def test_nb201_encoding_counts_live_ops_and_conv_depth():
    from hwnas.spaces.nb201 import cell_graph_features

    sp = create_space("nb201")
    # genes (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2); ops: 0 none, 1 skip, 2 conv1x1, 3 conv3x3, 4 pool
    resnet_like = [3, 0, 3, 1, 0, 2]  # 0->1->2->3 = conv3, conv3, conv1 plus a skip 0->3
    f = cell_graph_features(np.array([resnet_like]))[0]
    # counts skip/c1/c3/pool, deepest, deepest 3x3, shallowest, live paths, conv-free path, c1*c3, c3^2, deepest^2
    assert f.tolist() == [1, 1, 2, 0, 3, 2, 0, 2, 1, 2, 4, 9]
    dead = sp.make([3, 0, 3, 1, 0, 0])  # node 2 never reaches the output: its two convs are dead
    assert cell_graph_features(np.array([sp.simplify(dead).genes]))[0][:4].tolist() == [1, 0, 0, 0]
    # functionally identical cells (same simplified genes) share a row; different cells do not
    X = sp.encode([dead, sp.make([2, 0, 4, 1, 0, 0]), sp.make(resnet_like)])
    assert X.shape == (3, 12 + 30) and np.array_equal(X[0], X[1]) and not np.array_equal(X[0], X[2])


def test_generic_encoding_is_one_hot_genes_and_pairs():
    sp = create_space("mobilenet")
    archs = sp.sample_distinct(3, np.random.default_rng(0))
    X = sp.encode(archs)
    n = len(sp.cardinalities())
    assert X.shape[0] == 3 and np.all(X.sum(1) == n + n * (n - 1) // 2)
