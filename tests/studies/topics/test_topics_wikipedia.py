"""The Wikipedia variant (Fig. 6): its split of articles and a small run on the packaged summaries."""

import numpy as np
import pandas as pd
import pytest

from fedmood.studies.topics.corpus import Documents
from fedmood.studies.topics.gibbs import LDAConfig
from fedmood.studies.topics.wikipedia import _split, run_wikipedia, summarise


def test_the_split_is_disjoint_and_gives_a_user_per_large_enough_category():
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 8
    docs = Documents([["w"]] * len(labels), labels)
    wiki = {"shared_docs": 20, "heldout_docs": 10, "user_docs": 25, "min_user_docs": 10}
    shared, held, users = _split(docs, wiki, seed=3)
    assert (len(shared), len(held)) == (20, 10)
    assert set(users) <= {"a", "b"} and "a" in users  # c has 8 articles at most: never a user
    assert len(users["a"]) == 25  # capped at user_docs
    every = shared + held + [i for idx in users.values() for i in idx]
    assert len(every) == len(set(every))  # no article in two roles
    assert all(labels[i] == c for c, idx in users.items() for i in idx)


def test_a_small_run_on_the_packaged_summaries():
    cfg = {
        "seed": 0, "min_count": 2, "lda": {"k_grid": [5]}, "shared": {"iterations": 10},
        "protocol": {"iterations": 10},
        "wikipedia": {"seeds": 1, "shared_docs": 300, "heldout_docs": 100, "user_docs": 40, "min_user_docs": 40},
    }  # fmt: skip
    ks, table = run_wikipedia(cfg, lambda k: LDAConfig(n_topics=k), progress=False)
    assert list(ks["k"]) == [5]
    assert len(table) >= 8 and (table["docs"] <= 40).all()  # most of the 11 categories keep 40 articles
    assert np.isfinite(table[["local_it10", "personal_it10", "gain_pct"]].to_numpy()).all()
    s = summarise(table)
    assert s["wiki_categories"] == table["category"].nunique()
    assert s["wiki_gain_pct_min"] <= s["wiki_gain_pct_mean"] <= s["wiki_gain_pct_max"]


def test_the_summary_averages_over_seeds_per_category_first():
    table = pd.DataFrame(
        {"category": ["x", "x", "y"], "gain_pct": [1.0, 3.0, 5.0], "iters_saved_pct": [10.0, np.nan, 30.0], "k": 5}
    )
    s = summarise(table)
    assert (s["wiki_gain_pct_mean"], s["wiki_gain_pct_min"], s["wiki_gain_pct_max"]) == (3.5, 2.0, 5.0)
    assert s["wiki_iters_saved_pct"] == pytest.approx(20.0)
    assert (s["wiki_reached_runs"], s["wiki_runs"]) == (2, 3)
