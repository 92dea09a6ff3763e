"""infoprompt.stats against scipy.stats, a simulation, and worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from infoprompt.stats import (
    detectable,
    holm,
    mean_t,
    paired_t,
    power_paired_t,
    sign_test,
    wilcoxon_p,
)


def test_paired_t_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a, b = rng.normal(70, 2, 20), rng.normal(69, 2, 20)
    ours, ref = paired_t(a, b), sps.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert ours.n == 20 and ours.mean == pytest.approx(np.mean(a - b), rel=1e-12)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert (ours.low, ours.high) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_mean_t_degenerate_cases():
    assert math.isnan(mean_t([0.3]).p) and mean_t([0.3]).mean == 0.3
    assert mean_t([1.0, 1.0]).p == 0.0 and math.isnan(mean_t([0.0, 0.0]).p)
    with pytest.raises(ValueError, match="equal length"):
        paired_t([1, 2], [1, 2, 3])


def test_holm_worked_example_and_properties():
    # sorted p: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.06, 0.04·1) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, 12)
    adj = np.array(holm(p))
    assert np.all(adj >= p) and np.all(adj <= 1)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= 0)  # monotone in the raw p
    out = holm([0.01, math.nan, 0.02])
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_power_matches_a_simulation():
    rng = np.random.default_rng(2)
    n, delta, sd, alpha, sims = 10, 0.8, 1.0, 0.05, 20_000
    d = rng.normal(delta, sd, (sims, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    simulated = np.mean(np.abs(t) > sps.t.ppf(1 - alpha / 2, n - 1))
    assert power_paired_t(delta, sd, n, alpha) == pytest.approx(simulated, abs=0.015)
    assert power_paired_t(0.0, sd, n, alpha) == pytest.approx(alpha, abs=1e-9)


def test_detectable_effect_has_the_asked_power():
    delta = detectable(1.5, 20, alpha=0.025, power=0.8)
    assert power_paired_t(delta, 1.5, 20, 0.025) == pytest.approx(0.8, abs=1e-6)
    assert detectable(1.5, 40, 0.025) < delta  # more seeds, smaller detectable effect


def test_sign_and_wilcoxon_against_scipy():
    for w, l in ((5, 0), (7, 3), (2, 2), (0, 0)):
        ref = sps.binomtest(w, w + l, 0.5).pvalue if w + l else 1.0
        assert sign_test(w, l) == pytest.approx(ref, rel=1e-12)
    d = [0.5, -0.2, 1.1, 0.0, 0.7, 0.3]
    assert wilcoxon_p(d) == pytest.approx(sps.wilcoxon([x for x in d if x]).pvalue)
    assert wilcoxon_p([0.0, 0.0]) is None
