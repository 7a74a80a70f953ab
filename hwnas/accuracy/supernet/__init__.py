"""Weight-sharing supernets: accuracy of any subnet of ``nb201`` or ``mobilenet`` in seconds.

``train_supernet`` trains one (SPOS single-path for nb201, Once-for-All elastic + sandwich rule for mobilenet);
``supernet_values`` scores subnets on the validation split with inherited weights and recalibrated batch norm;
``load_ofa_state_dict`` reads Once-for-All's published MobileNetV3 supernets (scored on your data set:
``supernet_data``). See docs/supernet.md.
"""

from .evaluate import export_subnet, load_supernet, supernet_data, supernet_values
from .mobilenet import load_ofa_state_dict
from .train import SUPERNET_SPACES, build_supernet, make_recipe, train_supernet

__all__ = ["SUPERNET_SPACES", "build_supernet", "export_subnet", "load_ofa_state_dict", "load_supernet",
           "make_recipe", "supernet_data", "supernet_values", "train_supernet"]
