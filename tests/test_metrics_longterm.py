"""Long-term session metrics and dominating categories against values worked out by hand.

Three sessions over 3 categories, dominating categories D = {0}:

    session A: rewards [1, .5, .5]  categories [{0}, {1}, {0,2}]  return 2, len 3, 2 items in D
    session B: rewards [2]          categories [{1}]              return 2, len 1, 0 items in D
    session C: rewards [0, 1]       categories [{2}, {2}]         return 1, len 2, 0 items in D
"""

from __future__ import annotations

import numpy as np
import pytest
from pytest import approx

from rayrec.errors import ConfigError, DataError
from rayrec.eval import dominating_categories, mean_ci95, ratio_ci95, session_report, session_stats
from rayrec.eval.longterm import Z_95


def _multi_hot(sets: list[list[int]], n_cat: int = 3) -> np.ndarray:
    out = np.zeros((len(sets), n_cat), dtype=bool)
    for row, cs in enumerate(sets):
        out[row, cs] = True
    return out


REWARDS = [np.array([1.0, 0.5, 0.5]), np.array([2.0]), np.array([0.0, 1.0])]
CATEGORIES = [_multi_hot([[0], [1], [0, 2]]), _multi_hot([[1]]), _multi_hot([[2], [2]])]
DOMINATING = np.array([True, False, False])


def test_session_stats_by_hand():
    stats = session_stats(REWARDS, CATEGORIES, DOMINATING)
    np.testing.assert_allclose(stats.returns, [2, 2, 1])
    np.testing.assert_array_equal(stats.lengths, [3, 1, 2])
    np.testing.assert_allclose(stats.cat_coverage, [1, 1 / 3, 1 / 3])
    np.testing.assert_allclose(stats.cat_entropy, [1.5, 0, 0])  # A: counts (2,1,1) -> (.5,.25,.25)
    np.testing.assert_allclose(stats.dominated, [2, 0, 0])


def test_session_report_by_hand():
    report = session_report(REWARDS, CATEGORIES, DOMINATING)
    assert list(report) == ["R_tra", "R_each", "Len", "cat_coverage", "cat_entropy", "MCD"]
    means = {key: mean for key, (mean, _) in report.items()}
    assert means == approx(
        {"R_tra": 5 / 3, "R_each": 5 / 6, "Len": 2, "cat_coverage": 5 / 9, "cat_entropy": 0.5, "MCD": 2 / 6}
    )
    # R_tra: returns (2,2,1), sample var 1/3 -> 1.96 * sqrt(1/3) / sqrt(3)
    assert report["R_tra"][1] == approx(Z_95 * np.sqrt(1 / 3) / np.sqrt(3))
    # Len: lengths (3,1,2), sample sd 1
    assert report["Len"][1] == approx(Z_95 / np.sqrt(3))
    # R_each = 5/6; residuals x - rho*y = (-1/2, 7/6, -2/3), sample var 37/36, mean length 2
    assert report["R_each"][1] == approx(Z_95 * np.sqrt(37 / 36) / (np.sqrt(3) * 2))
    # MCD = 1/3; residuals (1, -1/3, -2/3), sample var 7/9
    assert report["MCD"][1] == approx(Z_95 * np.sqrt(7 / 9) / (np.sqrt(3) * 2))
    # cat_entropy values (1.5, 0, 0): sample var 0.75
    assert report["cat_entropy"][1] == approx(Z_95 * np.sqrt(0.75) / np.sqrt(3))


def test_single_session_has_unknown_interval_and_empty_sessions_count():
    report = session_report(REWARDS[:1], CATEGORIES[:1], DOMINATING)
    assert report["R_tra"][0] == approx(2.0)
    assert np.isnan(report["R_tra"][1]) and np.isnan(report["MCD"][1])
    # an empty session lowers Len and R_tra but adds no steps to the per-step ratios
    with_empty = session_report(
        [*REWARDS, np.zeros(0)], [*CATEGORIES, np.zeros((0, 3), dtype=bool)], DOMINATING
    )
    assert with_empty["Len"][0] == approx(6 / 4)
    assert with_empty["R_tra"][0] == approx(5 / 4)
    assert with_empty["R_each"][0] == approx(5 / 6)
    assert with_empty["cat_coverage"][0] == approx((5 / 3) / 4)


def test_session_report_rejects_misaligned_input():
    with pytest.raises(DataError, match="session 1"):
        session_report(REWARDS, [CATEGORIES[0], CATEGORIES[0], CATEGORIES[2]], DOMINATING)
    with pytest.raises(DataError):
        session_report(REWARDS, CATEGORIES[:2], DOMINATING)
    with pytest.raises(DataError):
        session_report([], [], DOMINATING)
    with pytest.raises(DataError, match="no steps"):
        session_report([np.zeros(0)], [np.zeros((0, 3), dtype=bool)], DOMINATING)


def test_dominating_categories_by_hand():
    # items: 0 {0}, 1 {1}, 2 {1,2}; train interactions 0,0,0,1,2,2 -> counts cat0 3, cat1 3, cat2 2 (of 8)
    categories = _multi_hot([[0], [1], [1, 2]])
    train = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(dominating_categories(train, categories, 0.8), [1, 1, 1])  # 6 < 6.4
    np.testing.assert_array_equal(dominating_categories(train, categories, 0.7), [1, 1, 0])  # 6 >= 5.6
    # exactly reaching the threshold stops there; the tie of cat0/cat1 goes to the lower index
    np.testing.assert_array_equal(dominating_categories(train, categories, 3 / 8), [1, 0, 0])
    with pytest.raises(ConfigError):
        dominating_categories(train, categories, 0.0)
    with pytest.raises(DataError):
        dominating_categories(train, np.zeros((3, 2), dtype=bool))


def test_confidence_interval_helpers():
    assert mean_ci95(np.array([1.0, 3.0])) == approx((2.0, Z_95 * np.sqrt(2) / np.sqrt(2)))
    assert mean_ci95(np.array([4.0, 4.0, 4.0])) == (4.0, 0.0)
    assert ratio_ci95(np.array([2.0, 4.0]), np.array([1.0, 2.0])) == approx((2.0, 0.0))  # exact ratio
    with pytest.raises(DataError):
        mean_ci95(np.array([]))
