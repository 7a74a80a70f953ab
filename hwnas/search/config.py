"""The configuration of a search: a typed ``SearchConfig`` whose fields parse themselves (recipe values and
CLI flags alike), recipe loading, and the embedded default recipe."""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import yaml

from ..errors import HwnasError, ParameterError, ParametersError


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


def _optional_number(key: str, value) -> float | None:
    return None if value is None else _number(key, value)


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
    ema: float | None = _setting(None, _optional_number)  # score a moving average of the weights (decay per step)
    train_seeds: int = _setting(1, _integer)  # accuracy train: mean validation accuracy of this many trainings
    train_device: str = _setting("auto", _text)
    budget: int = _setting(100, _integer)
    trust_archs: int = _setting(6, _integer)  # accuracy train: re-train this many archs with a 2nd seed (trust.json)
    # protocol of a device latency measured in the loop by default (no --latency names it): full | quick
    # (ProtocolSettings.quick(): short caps, more results flagged unstable); `--latency DEV=measure:quick` per device
    measure_protocol: str = _setting("full", _text)
    seed: int = _setting(0, _integer)
    executor: str = _setting("in-process", _text)
    address: str | None = _setting(None, _optional_text)
    # evaluations at once on Ray (local Ray starts with this many CPUs); mobo's batch follows it (run.build)
    workers: int | None = _setting(None, _optional_integer)
    out: str | None = _setting(None, _optional_text)

    def __post_init__(self):
        # where each setting came from (not a setting itself: make_config fills it, config.yaml records it)
        self.settings_from = {k: "library default" for k in self.keys()}

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
                             ema=self.ema, train_seeds=self.train_seeds, train_device=self.train_device)


# The embedded demo (``hwnas pareto-search`` with no arguments, or with only flags that tune a run): a real,
# small problem. NB201 cells at C=8, N=1 on 8x8 inputs, trained on scikit-learn's bundled digits; the cost
# objective is host latency (its fitted predictor, else measured in the loop: ``default_latency_source``) when
# hwnas can get it, else the MAC count (counted from the graph, an honest static proxy; the run says which).
DEFAULT_RECIPE = {
    "space": "nb201",
    "space_opt": {"C": 8, "N": 1, "input_size": 8},
    "strategy": "nsga2",
    "strategy_opt": {"population_size": 8},
    "objective": ["error", "latency_ms@host"],
    "accuracy": "train",
    "dataset": "digits",
    "epochs": 2,
    # each value the mean of 4 two-epoch trainings (seeds 0-3) scored on a moving average of the weights: seed-to-seed
    # Kendall tau 0.71-0.78 (median over disjoint groups of 4 seeds, three samples of 30 archs) where one training
    # gave 0.24-0.42 (docs/accuracy.md, issue #22); so fewer candidates than one-training-each would allow
    "ema": 0.9,
    "train_seeds": 4,
    "budget": 24,
    "trust_archs": 4,  # after the search, 4 archs re-trained with seeds 4-7: trust.json, report.html (issue #22)
    # host latency measured in the loop with the quick protocol (about 1 s per arch instead of 4-10 s on a noisy
    # 2-core machine: the demo in about a minute); measurements that miss the +-2 % interval are flagged unstable
    "measure_protocol": "quick",
    "seed": 0,
}


def load_recipe(path: Path) -> dict:
    from ..fileio import read_text

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


def _expand(text: str, key: str) -> str:
    """``$VAR`` / ``${VAR}`` and ``~`` in a path: recipes name third-party data by a variable
    (``table:${NB201_DATA}/accuracy_cifar10.csv``) so they work wherever the user keeps it."""
    expanded = os.path.expanduser(os.path.expandvars(text))
    missing = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if missing:
        raise HwnasError(f"{key} {text!r}: environment variable {missing[0]} is not set (export {missing[0]}=DIR; "
                         "README.md, 'Third-party data', says where the NB201 tables come from)")
    return expanded


def _absolute_table(spec, key: str = "table"):
    """``table:rel.csv`` -> ``table:/abs/rel.csv`` (also ``DEV=table:...``, ``$VAR`` expanded), so a resumed
    run finds it."""
    if not spec:
        return spec
    head, sep, rest = str(spec).partition("=")
    prefix, body = (head + sep, rest) if sep and not head.startswith("table:") else ("", str(spec))
    if body.startswith("table:") and len(body) > 6:
        return prefix + "table:" + str(Path(_expand(body[6:], key)).absolute())
    return spec


_ALIASES = {"objectives": "objective", "constraints": "constraint"}
_MAPPINGS = ("space_opt", "strategy_opt")

# Where a setting came from (config.yaml's ``settings_from``): a flag, the recipe file, the embedded demo, or the
# library's own default (SearchConfig's field default, or a default chosen for this build, with why).
FLAG, RECIPE, DEMO, LIBRARY = "flag", "recipe", "demo", "library default"


def make_config(recipe: dict | None = None, overrides: dict | None = None, base: dict | None = None,
                recipe_origin: str = RECIPE) -> SearchConfig:
    """The library defaults, then ``base`` (the demo, when the command line runs it), then recipe values, then
    explicit flag values (None = not given) on top; unknown keys are an error. ``cfg.settings_from`` says where
    each setting came from."""
    known = SearchConfig.keys()
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for origin, values in ((DEMO, base or {}), (recipe_origin, recipe or {}), (FLAG, overrides or {})):
        for key, value in values.items():
            k = str(key).replace("-", "_")
            k = _ALIASES.get(k, k)
            if k not in known:
                what = "flag" if origin == FLAG else "recipe"
                raise HwnasError(f"unknown {what} setting {key!r}; known: {', '.join(known)}")
            if value is None or (isinstance(value, (list, tuple, dict)) and not value and origin == FLAG):
                continue
            if k in _MAPPINGS and k in merged:  # --space-opt C=16 changes one setting of the recipe's
                value = {**_mapping(k, merged[k]), **_mapping(k, value)}
                origin_k = origin if origins[k] == origin else f"{origins[k]} + {origin}"
            else:
                origin_k = origin
            merged[k] = value
            origins[k] = origin_k
    cfg = SearchConfig()
    for k, v in merged.items():
        cfg.set(k, v)
    cfg.settings_from = {k: origins.get(k, LIBRARY) for k in known}
    cfg.accuracy = _absolute_table(cfg.accuracy, "accuracy")
    cfg.latency = [_absolute_table(x, "latency") for x in cfg.latency]
    cfg.energy = [_absolute_table(x, "energy") for x in cfg.energy]
    if cfg.data_dir:
        cfg.data_dir = str(Path(_expand(cfg.data_dir, "data_dir")).absolute())
    if cfg.budget < 1:
        raise ParameterError("budget", f"must be >= 1, got {cfg.budget}")
    if cfg.trust_archs < 0:
        raise ParameterError("trust_archs", f"must be >= 0 (0 = no seed check), got {cfg.trust_archs}")
    if cfg.measure_protocol not in MEASURE_PROTOCOLS:
        raise HwnasError(f"measure_protocol must be one of {', '.join(MEASURE_PROTOCOLS)}, got {cfg.measure_protocol!r}")
    if not cfg.objective:
        raise ParametersError("a search needs at least one `objective`")
    return cfg


def check_option_types(factory, params: dict, name: str) -> dict:
    """Refuse a text value for a parameter whose default is a number (``--strategy-opt population_size=abc``),
    naming the parameter ``name`` that holds them (``strategy_opt``), before anything runs. Parameters the factory does not declare are left to it."""
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
            raise ParameterError(name, f"{key}={value!r}: must be a number (default {default!r})")
    return params


MEASURE_PROTOCOLS = ("full", "quick")


def default_latency_source(device: str, space_name: str) -> tuple[str | None, str]:
    """The library's default latency source for a device no ``--latency`` names, and why: its fitted predictor
    ('predictor'), else in-the-loop measurement when hwnas has a profile of the device ('measure'), else None.
    A predictor that exists but cannot be loaded (corrupt, another schema) is an error, never a silent switch."""
    from ..measure.device_profile import ProfileError, load_profile
    from ..predictors import NoPredictorError, load_predictor

    try:
        load_predictor(device, space=space_name)
        return "predictor", f"the fitted {device} predictor for {space_name}"
    except NoPredictorError:
        pass
    try:
        load_profile(device)
    except (ProfileError, KeyError):  # an unknown device name: no profile to measure with
        return None, f"no {device} predictor for {space_name} and no device profile {device!r}"
    return "measure", f"no {device} predictor for {space_name} is fitted: measured on {device} in the loop"


def host_cost_source(space_name: str) -> str | None:
    """How host latency can be obtained here: 'predictor' (a trained host predictor), 'measure' (a host
    device profile) or None."""
    return default_latency_source("host", space_name)[0]


def fill_cost_defaults(cfg: SearchConfig) -> SearchConfig:
    """Give every device latency objective or constraint that no ``--latency`` names its library default
    source (``default_latency_source``), written into ``cfg.latency`` so that config.yaml, and a resume, use
    the same one; ``cfg.settings_from['latency']`` says which and why. Energy keeps its default (measured)."""
    from ..evaluation.factory import EvaluatorSpec, resolve_single_device, split_device_specs

    default, per_device = split_device_specs(cfg.latency)
    if default is not None:
        return cfg
    spec = resolve_single_device(EvaluatorSpec(objectives=list(cfg.objective), constraints=list(cfg.constraint),
                                               latency=list(cfg.latency), energy=list(cfg.energy)))
    devices = []
    for q in list(spec.objectives) + list(spec.constraints):
        head = str(q).split("<=", 1)[0].strip()
        if head.startswith("latency_ms@"):
            device = head.split("@", 1)[1]
            if device not in per_device and device not in devices:
                devices.append(device)
    chosen = []
    for device in devices:
        source, why = default_latency_source(device, cfg.space)
        if source is None:
            continue  # build_evaluator says what to add
        if source == "measure" and cfg.measure_protocol == "quick":
            source, why = "measure:quick", f"{why}, quick protocol (measure_protocol: quick)"
        cfg.latency = [*cfg.latency, f"{device}={source}"]
        chosen.append(f"{device}={source} ({why})")
    if chosen:
        before = cfg.settings_from.get("latency", LIBRARY)
        before = "" if before == LIBRARY else f"{before} + "
        cfg.settings_from["latency"] = f"{before}{LIBRARY}: {'; '.join(chosen)}"
    return cfg


# What defines the problem. Any of these on the command line starts from the library's own defaults (the
# space's own settings, strategy auto, ...), never from the demo; every other flag only tunes a run (budget,
# seed, strategy, epochs, executor, ...) and, given alone, modifies the demo.
PROBLEM_KEYS = ("space", "objective", "accuracy", "latency", "energy", "dataset", "data_dir")


def default_recipe(notes: list[str] | None = None) -> dict:
    """The embedded demo, with the cost objective this build can serve (host latency or MACs)."""
    recipe = dict(DEFAULT_RECIPE)
    if host_cost_source(recipe["space"]) is None:
        recipe["objective"] = ["error", "macs"]
        if notes is not None:
            notes.append("no host latency predictor or profiler in this build: the cost objective is MACs "
                         "(counted from the graph)")
    return recipe


def default_config(notes: list[str] | None = None) -> SearchConfig:
    """The demo, as ``hwnas pareto-search`` with no arguments runs it."""
    return make_config(base=default_recipe(notes))


# settings of the demo that only make sense together with another one: a flag that changes the latter drops
# the former (``--strategy random`` drops the demo's nsga2 population size)
_TIED = {"strategy": ("strategy_opt",)}


def config_from_flags(flags: dict, notes: list[str] | None = None) -> SearchConfig:
    """The configuration of ``hwnas pareto-search`` without a recipe. One rule: with no flag that defines the
    problem (``PROBLEM_KEYS``), the flags tune the embedded demo (``--budget 8 --seed 1`` keeps the rest of it);
    with any of them, the search starts from the library defaults and the demo plays no part."""
    given = {k: v for k, v in flags.items() if v not in (None, [])}
    problem = [k for k in PROBLEM_KEYS if k in given]
    if problem:
        if notes is not None:
            named = ", ".join("--" + k.replace("_", "-") for k in problem)
            notes.append(f"{named} define the problem: unset settings take the library defaults "
                         "(settings_from in config.yaml), not the demo's")
        return make_config(None, flags)
    base = default_recipe(notes)
    for key, tied in _TIED.items():
        if key in given and given[key] != base.get(key):
            for t in tied:
                base.pop(t, None)
    return make_config(overrides=flags, base=base)
