"""Statistics of `hwnas ci-check` (hwnas.ci.stats) on synthetic round medians (no runtime needed: milliseconds)."""

import math

import numpy as np
import pytest

from hwnas.ci import stats as rg


def rounds(rng, n, median_ms=1.0, cv=0.02):
    """n round medians around median_ms with lognormal noise (cv ~ sigma)."""
    return median_ms * np.exp(rng.normal(0.0, cv, n))


def paired(rng, n, ratio, median_ms=1.0, cv=0.02, drift=0.05):
    """Paired rounds with a shared per-round machine-load factor (what ABBA pairing cancels)."""
    load = np.exp(rng.normal(0.0, drift, n))
    base = median_ms * load * np.exp(rng.normal(0.0, cv, n))
    cand = ratio * median_ms * load * np.exp(rng.normal(0.0, cv, n))
    return base, cand


TH = rg.Thresholds()


def test_hodges_lehmann_estimators_known_values():
    assert rg.hl_one_sample([1.0, 2.0, 3.0]) == pytest.approx(2.0)
    # Walsh averages of (0, 0, 10): 0, 0, 10, 0, 5, 5 -> median 2.5 (the mean would be 3.33)
    assert rg.hl_one_sample([0.0, 0.0, 10.0]) == pytest.approx(2.5)
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert rg.hl_two_sample(x, x + 0.3) == pytest.approx(0.3)


def test_known_shift_is_detected(rng):
    base, cand = paired(rng, 12, ratio=1.20)
    st = rg.compare_rounds(base, cand, delta=0.05, rng=np.random.default_rng(1))
    assert st.ratio == pytest.approx(1.20, rel=0.03)
    assert st.ci_low > 1.05 and st.ci_low <= st.ratio <= st.ci_high
    verdict, reason = rg.decide(st, TH)
    assert verdict == rg.FAIL and "lower bound" in reason


def test_no_shift_passes_despite_drift(rng):
    # 5% round-to-round load drift: the paired design cancels it
    base, cand = paired(rng, 16, ratio=1.0, drift=0.05, cv=0.01)
    st = rg.compare_rounds(base, cand, delta=0.05, rng=np.random.default_rng(1))
    assert st.ci_high < 1.05 and st.ci_low < 1.0 < st.ci_high
    assert rg.decide(st, TH)[0] == rg.PASS


def test_drift_without_pairing_is_not_a_pass(rng):
    # the same data analysed unpaired: the load drift swamps the comparison -> not a confident pass
    base, cand = paired(rng, 16, ratio=1.0, drift=0.10, cv=0.01)
    unpaired = rg.compare_rounds(base, cand, delta=0.05, paired=False, rng=np.random.default_rng(1))
    assert unpaired.ci_high > 1.05
    assert rg.decide(unpaired, TH)[0] == rg.INCONCLUSIVE


def test_too_few_rounds_is_inconclusive_even_for_a_big_shift(rng):
    base, cand = paired(rng, 4, ratio=1.5)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    assert st.ci_bootstrap[0] > 1.05  # the bootstrap alone looks clear, but 4 rounds cannot be trusted:
    assert st.ci_rank == (0.0, math.inf) and st.ci_low == 0.0  # the rank interval is unbounded at n = 4
    verdict, reason = rg.decide(st, TH)
    assert verdict == rg.INCONCLUSIVE and "too few rounds" in reason


def test_noisy_small_shift_is_inconclusive(rng):
    base, cand = paired(rng, 10, ratio=1.05, cv=0.08)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    assert st.ci_low < 1.05 < st.ci_high
    assert rg.decide(st, TH)[0] == rg.INCONCLUSIVE


def test_slowdown_under_an_explicit_floor_gets_its_own_verdict(rng):
    base, cand = paired(rng, 12, ratio=1.20, median_ms=0.1)  # +20 % but only +0.02 ms
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    assert st.ci_low > 1.05 and st.slowdown_ms < 0.05
    verdict, reason = rg.decide(st, rg.Thresholds(floor_ms=0.05))
    assert verdict == rg.UNDER_FLOOR and "explicit 0.05 ms floor" in reason  # not a silent pass
    assert rg.decide(st, TH)[0] == rg.FAIL  # no explicit floor: the noise floor is far below 0.02 ms


def test_issue15_small_model_regression_fails_by_default(rng):
    # the issue's case: a 0.4 ms model measured +6.6% [1.053, 1.070] passed under a fixed 0.05 ms floor
    base, cand = paired(rng, 16, ratio=1.066, median_ms=0.398, cv=0.004)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    assert st.ci_low > 1.05 and st.slowdown_ms < 0.05
    nf = st.noise_floor
    assert nf["floor_ms"] < st.slowdown_ms and nf["aa_pairs"] == 8 and nf["timer_ms"] < 1e-4
    verdict, reason = rg.decide(st, TH)
    assert verdict == rg.FAIL and "lower bound > 1.050" in reason


def test_aa_spread_recovers_the_block_noise():
    rng = np.random.default_rng(7)
    sd_block = 0.03  # each round's baseline median has 3 % lognormal noise -> an A/A pair differs by 3 % * sqrt 2
    base = np.exp(rng.normal(0.0, sd_block, 2000))
    sd, pairs = rg.aa_spread(base)
    assert pairs == 1000 and sd == pytest.approx(sd_block * math.sqrt(2), rel=0.1)
    assert rg.aa_spread([1.0, 1.1, 1.2]) == (0.0, 1)  # one pair: no spread estimate


def test_noise_floor_is_the_aa_half_width_and_shrinks_with_rounds():
    rng = np.random.default_rng(8)
    base = 2.0 * np.exp(rng.normal(0.0, 0.02, 40))
    sd, _ = rg.aa_spread(base)
    f12, f48 = rg.noise_floor(base, 12, timer_resolution_ms=1e-6), rg.noise_floor(base, 48, timer_resolution_ms=1e-6)
    assert f12["aa_ms"] == pytest.approx(float(np.median(base)) * math.expm1(1.959964 * sd / math.sqrt(12)), rel=1e-5)
    assert f48["floor_ms"] == pytest.approx(f12["floor_ms"] / 2, rel=0.02)  # 1 / sqrt(rounds)
    assert rg.noise_floor(base, 12, timer_resolution_ms=1.0)["floor_ms"] == 1.0  # a coarse timer dominates


def test_a_difference_of_one_timer_tick_is_not_a_regression():
    # a coarse clock (0.01 ms ticks): every block median is 0.10 or 0.11 ms -- the CI says +10 %, exactly,
    # but the measurement cannot resolve 0.01 ms: inconclusive (not a pass, not a fail)
    base, cand = np.full(16, 0.10), np.full(16, 0.11)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1), timer_resolution_ms=0.01)
    assert st.ci_low > 1.05 and st.noise_floor["aa_ms"] == 0.0
    verdict, reason = rg.decide(st, TH)
    assert verdict == rg.INCONCLUSIVE and "within what this measurement resolves" in reason
    assert rg.decide(st, rg.Thresholds(floor_ms=0.02))[0] == rg.UNDER_FLOOR  # the explicit floor's own verdict


@pytest.mark.parametrize("median_ms", [0.05, 0.2, 2.0, 20.0])
@pytest.mark.parametrize("floor_ms", [None, 0.05])
def test_a_ci_above_one_plus_delta_never_passes(median_ms, floor_ms):
    th = rg.Thresholds(floor_ms=floor_ms)
    seen = 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        base, cand = paired(rng, 16, ratio=1.05 + 0.01 * seed, median_ms=median_ms, cv=0.01)
        st = rg.compare_rounds(base, cand, rng=np.random.default_rng(seed))
        verdict, _ = rg.decide(st, th)
        if st.ci_low > 1.05:
            seen += 1
            assert verdict in (rg.FAIL, rg.UNDER_FLOOR, rg.INCONCLUSIVE) and verdict != rg.PASS
            assert verdict == rg.FAIL or (floor_ms is not None and verdict == rg.UNDER_FLOOR)
    assert seen >= 6


def test_unpaired_comparison_detects_a_shift(rng):
    base, cand = rounds(rng, 20), rounds(rng, 20) * 1.3
    st = rg.compare_rounds(base, cand, paired=False, rng=np.random.default_rng(1))
    assert not st.paired and st.ratio == pytest.approx(1.3, rel=0.03)
    assert rg.decide(st, TH)[0] == rg.FAIL


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(5)
    base, cand = paired(rng, 10, ratio=1.1)
    a = rg.compare_rounds(base, cand, rng=np.random.default_rng(3))
    b = rg.compare_rounds(base, cand, rng=np.random.default_rng(3))
    c = rg.compare_rounds(base, cand, rng=np.random.default_rng(4))
    assert a.ci_bootstrap == b.ci_bootstrap and a.ci_rank == b.ci_rank == c.ci_rank
    assert a.ci_bootstrap != c.ci_bootstrap


def test_rank_statistics_match_scipy(rng):
    from scipy import stats

    b, c = rng.normal(0, 0.05, 9), rng.normal(0.08, 0.05, 9)
    p_reg, p_within = rg.rank_p_values(b, c, 0.05, paired=True)
    assert p_reg == pytest.approx(stats.wilcoxon(c - b - 0.05, alternative="greater").pvalue)
    assert p_within == pytest.approx(stats.wilcoxon(c - b - 0.05, alternative="less").pvalue)
    p_reg, _ = rg.rank_p_values(b, c, 0.05, paired=False)
    assert p_reg == pytest.approx(stats.mannwhitneyu(c - 0.05, b, alternative="greater").pvalue, rel=1e-6)
    # n = 8: P(T+ <= 3) = 5/256 <= 0.025 < P(T+ <= 4) -> the 95% CI is [W(4), W(33)] of the 36 Walsh averages
    assert np.cumsum(rg.signed_rank_null(8))[3:5] == pytest.approx([5 / 256, 7 / 256])


def test_p_values_match_the_confidence_interval(rng):
    base, cand = paired(rng, 12, ratio=1.12, cv=0.03)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    # lower bound above 1+delta  <=>  one-sided p < alpha/2 (up to the bootstrap's granularity)
    assert (st.ci_low > 1.05) == (st.p_regression < 0.025)
    assert (st.ci_high < 1.05) == (st.p_within < 0.025)


def test_holm_adjustment_known_values():
    assert rg.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert rg.holm([0.5]) == pytest.approx([0.5])
    assert rg.holm([0.9, 0.9]) == pytest.approx([1.0, 1.0])  # capped
    assert len(rg.holm([])) == 0


def test_holm_turns_a_marginal_regression_among_many_models_inconclusive(rng):
    base, cand = paired(rng, 12, ratio=1.07, cv=0.03)
    st = rg.compare_rounds(base, cand, rng=np.random.default_rng(1))
    assert 0.001 < st.p_regression < 0.025, st.p_regression  # a regression for one model on its own
    assert rg.decide(st, TH)[0] == rg.FAIL
    adjusted = rg.holm([st.p_regression] + [0.9] * 49)[0]  # ... but one of 50 models
    verdict, reason = rg.decide(st, TH, p_regression_adjusted=adjusted)
    assert verdict == rg.INCONCLUSIVE and "Holm" in reason


def test_suite_geometric_mean(rng):
    sts = []
    for ratio in (1.10, 1.00):
        base, cand = paired(rng, 16, ratio=ratio, cv=0.01, drift=0.0)
        sts.append(rg.compare_rounds(base, cand, rng=np.random.default_rng(1)))
    g = rg.suite_geomean(sts)
    assert g["models"] == 2
    assert g["ratio"] == pytest.approx(math.sqrt(sts[0].ratio * sts[1].ratio))
    assert g["ci_low"] < g["ratio"] < g["ci_high"]
