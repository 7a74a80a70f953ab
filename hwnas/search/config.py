"""The configuration of a search: a typed ``SearchConfig`` whose fields parse themselves (recipe values and
CLI flags alike), recipe loading, and the embedded default recipe."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from ..errors import HwnasError


# -- field parsers: (field name, value) -> typed value, or one clear HwnasError naming the field ------------
def _text(key: str, value) -> str:
    return str(value)


def _optional_text(key: str, value) -> str | None:
    return None if value is None else str(value)


def _integer(key: str, value) -> int:
    """3, "3", 3.0 -> 3; anything else (3.5, "three", True) names the field."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise HwnasError(f"{key} must be an integer, got {value!r}")
    return int(number)


def _number(key: str, value) -> float:
    """0.05, "0.05", 1 -> a finite float; anything else names the field."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise HwnasError(f"{key} must be a number, got {value!r}")
    return number


def _optional_integer(key: str, value) -> int | None:
    return None if value is None else _integer(key, value)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(key: str, value) -> bool:
    """A real boolean: YAML/flag booleans, or true/false, yes/no, on/off, 1/0 (``"no"`` is False)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise HwnasError(f"{key} must be true or false, got {value!r}")


def _listify(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _strings(key: str, value) -> list[str]:
    return _listify(value)


def _mapping(key: str, value) -> dict:
    """A mapping, or KEY=VALUE strings (numbers parsed), -> dict."""
    from ..spaces import parse_space_options

    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return parse_space_options(_listify(value))


def _setting(default, parse: Callable[[str, Any], Any]):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"parse": parse})
    return field(default=default, metadata={"parse": parse})


@dataclass
class SearchConfig:
    """Every setting of a search; recipe keys and CLI flags use these names (``-`` or ``_``).
    Set values through ``make_config``: each field's parser turns recipe text into its type."""

    space: str = _setting("nb201", _text)
    space_opt: dict = _setting({}, _mapping)
    strategy: str = _setting("auto", _text)  # auto: mobo when every cost is cheap, else nsga2 (choose_strategy)
    strategy_opt: dict = _setting({}, _mapping)
    objective: list = _setting(["error", "latency_ms@host"], _strings)
    constraint: list = _setting([], _strings)
    accuracy: str | None = _setting("train", _optional_text)
    latency: list = _setting([], _strings)
    energy: list = _setting([], _strings)
    dataset: str = _setting("digits", _text)
    data_dir: str | None = _setting(None, _optional_text)
    download: bool = _setting(False, _boolean)
    epochs: int = _setting(3, _integer)
    proxy: str = _setting("naswot", _text)
    batch_size: int = _setting(64, _integer)
    max_train: int | None = _setting(None, _optional_integer)
    lr: float = _setting(0.05, _number)
    label_smoothing: float = _setting(0.0, _number)
    train_device: str = _setting("auto", _text)
    budget: int = _setting(100, _integer)
    trust_archs: int = _setting(6, _integer)  # accuracy train: re-train this many archs with a 2nd seed (trust.json)
    seed: int = _setting(0, _integer)
    executor: str = _setting("in-process", _text)
    address: str | None = _setting(None, _optional_text)
    out: str | None = _setting(None, _optional_text)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict:
        return asdict(self)

    def set(self, key: str, value) -> None:
        """Parse ``value`` with the field's parser and store it."""
        parse = next(f.metadata["parse"] for f in fields(self) if f.name == key)
        setattr(self, key, parse(key, value))

    def evaluator_spec(self):
        """What the evaluator needs of this configuration."""
        from ..evaluation import EvaluatorSpec

        return EvaluatorSpec(objectives=list(self.objective), constraints=list(self.constraint),
                             accuracy=self.accuracy, latency=list(self.latency), energy=list(self.energy),
                             dataset=self.dataset, epochs=self.epochs, proxy=self.proxy, data_dir=self.data_dir,
                             download=self.download, batch_size=self.batch_size, seed=self.seed,
                             max_train=self.max_train, lr=self.lr, label_smoothing=self.label_smoothing,
                             train_device=self.train_device)


# The embedded default (``hwnas pareto-search`` with no arguments): a real, small problem that finishes in
# a few minutes on 2 cores. NB201 cells at C=8, N=1 on 8x8 inputs, trained for 2 epochs on scikit-learn's
# bundled digits; the cost objective is host latency when a host predictor or the profiler is available,
# else the MAC count (counted from the graph, an honest static proxy for cost; the run says which).
DEFAULT_RECIPE = {
    "space": "nb201",
    "space_opt": {"C": 8, "N": 1, "input_size": 8},
    "strategy": "nsga2",
    "strategy_opt": {"population_size": 8},
    "objective": ["error", "latency_ms@host"],
    "accuracy": "train",
    "dataset": "digits",
    "epochs": 2,
    "budget": 32,
    "seed": 0,
}


def load_recipe(path: Path) -> dict:
    from ..io import read_text

    path = Path(path)
    if not path.is_file():
        raise HwnasError(f"recipe {path} does not exist")
    try:
        data = yaml.safe_load(read_text(path, "recipe")) or {}
    except yaml.YAMLError as exc:
        raise HwnasError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise HwnasError(f"recipe {path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _absolute_table(spec):
    """``table:rel.csv`` -> ``table:/abs/rel.csv`` (also ``DEV=table:...``), so a resumed run finds it."""
    if not spec:
        return spec
    head, sep, rest = str(spec).partition("=")
    prefix, body = (head + sep, rest) if sep and not head.startswith("table:") else ("", str(spec))
    if body.startswith("table:") and len(body) > 6:
        return prefix + "table:" + str(Path(body[6:]).expanduser().absolute())
    return spec


_ALIASES = {"objectives": "objective", "constraints": "constraint"}
_MAPPINGS = ("space_opt", "strategy_opt")


def make_config(recipe: dict | None = None, overrides: dict | None = None) -> SearchConfig:
    """Recipe values, then explicit flag values (None = not given) on top; unknown keys are an error."""
    known = SearchConfig.keys()
    merged: dict[str, Any] = {}
    for source, values in (("recipe", recipe or {}), ("flag", overrides or {})):
        for key, value in values.items():
            k = str(key).replace("-", "_")
            k = _ALIASES.get(k, k)
            if k not in known:
                raise HwnasError(f"unknown {source} setting {key!r}; known: {', '.join(known)}")
            if value is None or (isinstance(value, (list, tuple, dict)) and not value and source == "flag"):
                continue
            if k in _MAPPINGS and k in merged:  # --space-opt C=16 changes one setting of the recipe's
                value = {**_mapping(k, merged[k]), **_mapping(k, value)}
            merged[k] = value
    cfg = SearchConfig()
    for k, v in merged.items():
        cfg.set(k, v)
    cfg.accuracy = _absolute_table(cfg.accuracy)
    cfg.latency = [_absolute_table(x) for x in cfg.latency]
    cfg.energy = [_absolute_table(x) for x in cfg.energy]
    if cfg.data_dir:
        cfg.data_dir = str(Path(cfg.data_dir).expanduser().absolute())
    if cfg.budget < 1:
        raise HwnasError(f"budget must be >= 1, got {cfg.budget}")
    if cfg.trust_archs < 0:
        raise HwnasError(f"trust_archs must be >= 0 (0 = no seed check), got {cfg.trust_archs}")
    if not cfg.objective:
        raise HwnasError("a search needs at least one --objective")
    return cfg


def check_option_types(factory, params: dict, flag: str) -> dict:
    """Refuse a text value for a parameter whose default is a number (``--strategy-opt population_size=abc``),
    naming the flag, before anything runs. Parameters the factory does not declare are left to it."""
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return params
    for key, value in params.items():
        param = signature.parameters.get(key)
        default = getattr(param, "default", None)
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HwnasError(f"{flag} {key}={value!r}: must be a number (default {default!r})")
    return params


def host_cost_source(space_name: str) -> str | None:
    """How host latency can be obtained here: 'predictor' (a trained host predictor), 'measure' (a host
    device profile) or None."""
    from ..measure.device_profile import load_profile
    from ..predictors import load_predictor

    try:
        load_predictor("host", space=space_name)
        return "predictor"
    except Exception:
        pass
    try:
        load_profile("host")
        return "measure"
    except Exception:
        return None


def default_recipe(notes: list[str] | None = None) -> dict:
    """The embedded default recipe, with the cost objective this build can serve (host latency or MACs)."""
    recipe = dict(DEFAULT_RECIPE)
    how = host_cost_source(recipe["space"])
    if how is None:
        recipe["objective"] = ["error", "macs"]
        if notes is not None:
            notes.append("no host latency predictor or profiler in this build: the cost objective is MACs "
                         "(counted from the graph)")
    else:
        recipe["latency"] = [f"host={how}"]
    return recipe


def default_config(notes: list[str] | None = None) -> SearchConfig:
    return make_config(default_recipe(notes))


# settings of the default that only make sense together with another one: a flag that changes the latter
# drops the former (``--space mobilenet`` drops the NB201 sizes, ``--objective ...`` the host cost source)
_TIED = {"space": ("space_opt",), "strategy": ("strategy_opt",), "objective": ("latency", "energy")}


def config_from_flags(flags: dict, notes: list[str] | None = None) -> SearchConfig:
    """Flags given without a recipe modify the embedded default run (``--budget 8 --seed 0`` keeps the rest
    of it); a flag that changes the space, strategy or objectives also drops the default's settings tied to
    them, so they never clash with the new choice."""
    given = {k: v for k, v in flags.items() if v not in (None, [])}
    # the default's own cost objective is chosen for this build; cost flags bring their own
    base = dict(DEFAULT_RECIPE) if given.keys() & {"objective", "latency", "energy"} else default_recipe(notes)
    for key, tied in _TIED.items():
        if key in given and given[key] != base.get(key):
            for t in tied:
                base.pop(t, None)
    return make_config(base, flags)
