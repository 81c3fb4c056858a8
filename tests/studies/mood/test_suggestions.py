"""Suggestions a person can act on, and their quality against the truth (hand-checked cases)."""

import json

import numpy as np
import pytest

from fedmood.studies.mood.data.activities import ACTIVITIES
from fedmood.studies.mood.data.local import LocalData
from fedmood.studies.mood.suggest import (
    SuggestContext,
    describe_centre,
    discretionary_items,
    feasible_items,
    suggest,
)
from fedmood.studies.mood.suggestion_quality import (
    Truth,
    evaluate_rankings,
    generator_truth,
    headline,
    ndcg_at_k,
    precision_at_k,
    quality_summary,
    run_truth,
)

KIND = {a.kind: i for i, a in reversed(list(enumerate(ACTIVITIES)))}  # the first activity of each kind
SLEEP, WORK, EAT, SOCIAL, MUSIC = KIND["sleep"], KIND["work"], KIND["personal"], KIND["phone"], KIND["leisure"]
CENTRES = np.array(
    [
        [SLEEP] * 6,
        [WORK] * 4 + [SOCIAL] * 2,  # mostly work: not discretionary
        [MUSIC] * 6,
        [SOCIAL] * 3 + [EAT] * 3,  # half and half: not a majority
        [MUSIC] * 4 + [EAT] * 2,
        [SOCIAL] * 6,
    ]
)


def test_only_items_mostly_of_discretionary_kinds_may_be_suggested():
    np.testing.assert_array_equal(discretionary_items(CENTRES, 6), [False, False, True, False, True, True])
    np.testing.assert_array_equal(discretionary_items(CENTRES, 6, ("work", "leisure")), [0, 1, 1, 0, 1, 0])
    assert discretionary_items(None, 3).all()  # a ratings table: nothing is known of an item's content
    with pytest.raises(ValueError, match=r"suggest\.kinds"):
        discretionary_items(CENTRES, 6, ("gaming",))
    assert describe_centre(CENTRES[4], 4) == f"{ACTIVITIES[MUSIC].name} x4, {ACTIVITIES[EAT].name} x2"


def test_the_context_is_what_the_user_does_at_that_time():
    items = np.array([2, 2, 4, 5, 1, 5])
    hours = np.array([19, 20, 19, 9, 19, 23])
    weekend = np.array([False, False, True, False, False, False])
    allowed = discretionary_items(CENTRES, 6)
    np.testing.assert_array_equal(feasible_items(items, hours, weekend, SuggestContext(19, False), allowed), [2])
    np.testing.assert_array_equal(feasible_items(items, hours, weekend, SuggestContext(19, None), allowed), [2, 4])
    np.testing.assert_array_equal(feasible_items(items, hours, weekend, SuggestContext(23, False, 0), allowed), [5])
    # wraps around midnight; nothing at 03:00 -> any discretionary item the user has done
    assert SuggestContext(0, None, 1).matches(np.array([23, 1, 2]), np.zeros(3)).tolist() == [True, True, False]
    np.testing.assert_array_equal(feasible_items(items, hours, weekend, SuggestContext(3, None, 0), allowed), [2, 4, 5])
    assert SuggestContext(19, False).describe() == "19:00 on a weekday"


def test_suggestions_are_ranked_and_carry_the_users_own_evidence():
    predicted = np.array([0.9, 0.95, 0.1, 0.0, 0.5, -0.2])
    items, moods = np.array([2, 2, 2, 4, 5]), np.array([0.0, 1.0, -1.0, 1.0, 0.0])
    shown = suggest(predicted, np.array([2, 4, 5]), items, moods, 2, CENTRES)
    assert [s.item for s in shown] == [4, 2]
    spread = moods.std(ddof=1)
    assert shown[0].own_hours == 1 and shown[0].uncertainty == pytest.approx(spread)  # one hour: (0 + spread²)/1
    assert shown[1].uncertainty == pytest.approx(np.sqrt((2.0 + spread**2) / 3 / 3))  # own moods 0, 1, -1
    assert shown[0].gain == pytest.approx(0.5 - moods.mean())


def test_ranking_metrics_by_hand():
    true = np.array([0.9, 0.8, 0.1, 0.5])
    assert precision_at_k(np.array([1.0, 0.9, 0.8, 0.0]), true, 3) == pytest.approx(2 / 3)
    assert precision_at_k(true, true, 3) == 1.0 and ndcg_at_k(true, true, 3) == 1.0
    relevance = true - 0.1
    dcg = relevance[0] + relevance[1] / np.log2(3) + relevance[2] / np.log2(4)
    ideal = relevance[0] + relevance[1] / np.log2(3) + relevance[3] / np.log2(4)
    assert ndcg_at_k(np.array([1.0, 0.9, 0.8, 0.0]), true, 3) == pytest.approx(dcg / ideal)


def test_the_generators_truth_is_the_mean_affinity_over_an_items_slots(tmp_path):
    affinity = np.random.default_rng(0).uniform(-1, 1, (2, len(ACTIVITIES)))
    (tmp_path / "_generator.json").write_text(json.dumps({"true_affinity": affinity.tolist()}))
    truth = generator_truth(tmp_path, CENTRES)
    assert truth.source == "generator"
    assert truth.moods[1, 4] == pytest.approx((4 * affinity[1, MUSIC] + 2 * affinity[1, EAT]) / 6)
    assert generator_truth(tmp_path / "none", CENTRES) is None


def _devices(rng):
    out = []
    for user in range(4):
        n = 60
        frags = CENTRES[rng.integers(0, 6, n)]
        out.append(
            LocalData(user, rng.uniform(-1, 1, n).astype(np.float32), np.arange(48), np.arange(48, n), fragments=frags,
                      hours=rng.integers(0, 24, n), weekend=rng.random(n) < 0.3)
        )  # fmt: skip
    return out


def test_an_oracle_ranks_perfectly_and_never_suggests_what_is_not_discretionary():
    rng = np.random.default_rng(1)
    devices = _devices(rng)
    truth = Truth(rng.uniform(-1, 1, (4, 6)), "generator")
    predicted = {"oracle": truth.moods, "reversed": -truth.moods}
    per_user = evaluate_rankings(predicted, devices, CENTRES, truth, SuggestContext(), ("leisure", "phone"), k=2)
    summary = quality_summary(per_user).set_index("model")
    assert summary.loc["oracle", "p_at_k"] == 1.0 and summary.loc["oracle", "ndcg_at_k"] == 1.0
    assert summary.loc["oracle", "gain"] == pytest.approx(summary.loc["oracle", "oracle_gain"])
    assert summary.loc["reversed", "p_at_k"] < 1.0 and summary.loc["reversed", "gain"] < summary.loc["oracle", "gain"]
    assert (per_user["non_discretionary"] == 0).all() and set(summary.index) == {"oracle", "reversed", "popularity"}
    assert summary.loc["oracle", "ranked_users"] == 4  # 3 discretionary items > k = 2 for every user
    found = headline(quality_summary(per_user))
    assert found["oracle_p3"] == 1.0 and found["non_discretionary_share"] == 0.0


def test_on_a_users_own_logs_the_held_out_days_are_the_truth(tmp_path):
    devices = _devices(np.random.default_rng(2))
    truth = run_truth({"logs_dir": str(tmp_path)}, devices, CENTRES, 6)  # no _generator.json: not generated
    assert truth.source == "held-out days"
    d = devices[1]
    items, moods = d.rows(CENTRES).part("val")
    for item in range(6):
        expected = moods[items == item].mean() if (items == item).any() else np.nan
        np.testing.assert_allclose(truth.moods[1, item], expected, rtol=1e-6)
    kinds = ("leisure", "phone")
    per_user = evaluate_rankings({"model": truth.moods}, devices, CENTRES, truth, SuggestContext(), kinds)
    assert per_user[per_user["model"] == "model"]["gain"].notna().all()
