"""One rule for the settings of `hwnas pareto-search` (issue 22, item 2): no flag that defines the problem ->
the flags tune the embedded demo; any problem-defining flag -> the library defaults, never the demo; a recipe
sits on the library defaults. config.yaml records where each setting came from, and strategy_why is true."""

import pytest
import yaml

from hwnas.search import DEFAULT_RECIPE, PROBLEM_KEYS, SearchConfig, config_from_flags, make_config

from journeys import run_hwnas
from search_fixtures import write_nb201_tables

pytestmark = pytest.mark.journey


def flags(**given):
    return {k: given.get(k) for k in SearchConfig.keys() if k != "out"}


@pytest.mark.parametrize("key, value", [
    ("space", "nb201"), ("objective", ["error", "params"]), ("accuracy", "proxy"), ("latency", ["host=measure"]),
    ("energy", ["host=measure"]), ("dataset", "digits"), ("data_dir", "/tmp"),
])
def test_a_problem_flag_starts_from_the_library_defaults_not_the_demo(key, value):
    assert key in PROBLEM_KEYS
    cfg = config_from_flags(flags(**{key: value}))
    library = SearchConfig()
    assert cfg.space_opt == {} and cfg.strategy == "auto" and cfg.strategy_opt == {}
    assert (cfg.epochs, cfg.budget) == (library.epochs, library.budget)
    assert cfg.settings_from[key] == "flag"
    assert all(cfg.settings_from[k] == "library default" for k in SearchConfig.keys() if k != key)


def test_tuning_flags_alone_modify_the_demo_and_say_so():
    cfg = config_from_flags(flags(budget=8, seed=3, strategy="random"))
    assert (cfg.budget, cfg.seed, cfg.strategy) == (8, 3, "random")
    assert cfg.space_opt == DEFAULT_RECIPE["space_opt"] and cfg.epochs == DEFAULT_RECIPE["epochs"]
    assert cfg.strategy_opt == {}  # the demo's options belong to the demo's strategy
    assert cfg.settings_from["budget"] == "flag" and cfg.settings_from["space_opt"] == "demo"
    assert cfg.settings_from["lr"] == "library default"


def test_a_recipe_sits_on_the_library_defaults_and_flags_on_it():
    cfg = make_config({"space": "nb201", "budget": 50}, flags(budget=7), recipe_origin="recipe r.yaml")
    assert cfg.budget == 7 and cfg.settings_from["budget"] == "flag"
    assert cfg.settings_from["space"] == "recipe r.yaml" and cfg.settings_from["strategy"] == "library default"
    merged = make_config({"space_opt": {"C": 8}}, {"space_opt": ["N=1"]}, recipe_origin="recipe")
    assert merged.space_opt == {"C": 8, "N": 1} and merged.settings_from["space_opt"] == "recipe + flag"


def test_problem_flags_run_the_library_defaults_from_the_command_line(tmp_path):
    """The issue's case: --space nb201 with a params objective and a (C=16, N=5) accuracy table ran nsga2 with
    population 8 on the demo's C=8, N=1, 8x8 network; now the space's own settings and strategy auto."""
    acc, _ = write_nb201_tables(tmp_path)
    out = tmp_path / "run"
    ran = run_hwnas(["pareto-search", "--space", "nb201", "--objective", "error", "--objective", "params",
                     "--accuracy", f"table:{acc}", "--budget", "12", "--out", out], cwd=tmp_path).ok()
    assert "define the problem" in ran.err and "strategy: mobo (auto:" in ran.err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["space_opt"] == {} and saved["strategy"] == "auto" and saved["strategy_ran"] == "mobo"
    assert saved["strategy_why"].startswith("auto: every cost objective (params)")
    assert saved["settings_from"]["space"] == "flag" and saved["settings_from"]["space_opt"] == "library default"
    assert saved["settings_from"]["budget"] == "flag" and saved["settings_from"]["epochs"] == "library default"
    # params counted on the benchmark's own network (C=16, N=5): the all-3x3 cell has 1.532 M parameters
    from hwnas.spaces import create_space

    space = create_space("nb201")
    rows = list(__import__("csv").DictReader(open(out / "evaluations.csv")))
    for row in rows:
        assert float(row["params"]) == space.static_costs(space.from_string(row["arch"])).params


def test_strategy_why_names_who_chose_the_strategy():
    from hwnas.search.run import ran

    def named(name):
        return type("S", (), {"name": name})()

    assert ran(named("nsga2"), make_config(base={"strategy": "nsga2"}))["strategy_why"] == "the demo's strategy"
    cfg = config_from_flags(flags(budget=4, strategy="random"))
    assert ran(named("random"), cfg)["strategy_why"] == "named: --strategy random"
    cfg = make_config({"strategy": "evolution"}, recipe_origin="recipe search/x.yaml")
    assert ran(named("evolution"), cfg)["strategy_why"] == "named in the recipe search/x.yaml"
    chosen = named("mobo")
    chosen.chosen_because = "auto: because"
    assert ran(chosen, make_config())["strategy_why"] == "auto: because"


def test_the_demo_measures_host_latency_with_the_quick_protocol_and_says_so(monkeypatch, tmp_path):
    """The demo's in-the-loop host latency uses the short protocol (issue 22: the demo in about a minute); a
    problem the user defines keeps the full protocol unless measure_protocol or DEV=measure:quick says so."""
    from hwnas.evaluation.sources import create_source
    from hwnas.evaluation.sources.measure import MeasureSource
    from hwnas.errors import HwnasError
    from hwnas.search.config import fill_cost_defaults

    monkeypatch.setenv("HWNAS_HOME", str(tmp_path))  # no fitted host predictor: measured in the loop
    demo = fill_cost_defaults(config_from_flags(flags(budget=4)))
    assert demo.measure_protocol == "quick" and demo.latency == ["host=measure:quick"]
    assert "quick protocol" in demo.settings_from["latency"]
    own = fill_cost_defaults(config_from_flags(flags(space="nb201")))
    assert own.measure_protocol == "full" and own.latency == ["host=measure"]
    assert create_source("measure:quick", "cost", "host").quick and not create_source("measure", "cost", "host").quick
    assert isinstance(create_source("measure", "cost", "host"), MeasureSource)
    with pytest.raises(HwnasError, match="measure takes no option, or 'quick'"):
        create_source("measure:fast", "cost", "host")
    with pytest.raises(HwnasError, match="measure_protocol must be one of full, quick"):
        make_config({"measure_protocol": "slow"})


def test_a_corrupt_host_predictor_stops_the_search_instead_of_measuring(monkeypatch, tmp_path, capsys):
    """The default host latency source: a fitted predictor, else measured in the loop when there is none. A
    predictor that exists but is damaged is an error naming it, never a silent switch to measuring."""
    import numpy as np

    from hwnas.cli.main import main
    from hwnas.errors import HwnasError
    from hwnas.predictors import create_predictor
    from hwnas.search.config import default_latency_source
    from hwnas.spaces import create_space

    monkeypatch.setenv("HWNAS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    space = create_space("nb201")
    archs = space.sample_distinct(30, np.random.default_rng(0))
    art = tmp_path / "home" / "latency_models" / "host" / "nb201-lut"
    create_predictor("lut", space=space).fit(archs, np.linspace(1, 3, 30)).set_card(device="host").save(art)
    assert default_latency_source("host", "nb201")[0] == "predictor"
    model = next(f for f in art.iterdir() if f.name != "card.json")
    model.write_bytes(b"damaged")
    with pytest.raises(HwnasError, match=model.name):
        default_latency_source("host", "nb201")
    assert main(["pareto-search", "--budget", "4", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert model.name in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
