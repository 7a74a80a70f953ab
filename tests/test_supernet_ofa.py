"""Once-for-All compatibility: OFA's own OFAMobileNetV3 state dict, loaded through hwnas, gives the same logits.

Skipped when the ``ofa`` package (dev extra) is not installed.
"""

import numpy as np
import pytest
import torch

from hwnas.accuracy.supernet import load_ofa_state_dict, supernet_values
from hwnas.errors import HwnasError
from hwnas.spaces import create_space

@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core box more threads make these tiny convolutions 10x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


ofa_networks = pytest.importorskip("ofa.imagenet_classification.elastic_nn.networks")


def _random_ofa(width_mult, n_classes=10):
    torch.manual_seed(0)
    net = ofa_networks.OFAMobileNetV3(n_classes=n_classes, dropout_rate=0, width_mult=width_mult,
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
    with pytest.raises(HwnasError, match="pass the data"):  # ImageNet is not bundled: the caller brings the data
        supernet_values(space, [space.sample(np.random.default_rng(0))], path)
    with pytest.raises(HwnasError, match="need the mobilenet space"):
        load_ofa_state_dict(create_space("nb201"), path)
