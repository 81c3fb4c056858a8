"""The personal topic-model study (Servia-Rodriguez et al., IoTDI 2018, §IV-§V-B) on NIPS and Wikipedia.

``run(cfg, out_dir)`` (``experiments/topics.py``) writes a results folder:

* ``k_selection.csv``: K chosen by M_S's held-out document-completion perplexity over ``lda.k_grid``;
* ``curves.csv`` (Fig. 4): the user's local and personal per-token log2-likelihood per iteration,
  per seed; ``fractions.csv`` (Fig. 5): the personal model's gain at iteration 10 when M_S saw
  10 %..100 % of the shared documents;
* ``heldout.csv``: local vs personal perplexity on the user's held-out documents against the number
  of the user's documents on the device;
* ``federated.csv``: M_S learnt on Flower from ``federated.users`` devices (under SecAgg+ with
  ``federated.secure``) against the pooled M_S (held-out perplexity, and the personal model's
  likelihood at iteration 10 from each);
* ``cost.csv``: seconds per Gibbs iteration against documents, and the vocabulary; peak memory of
  personalising one user;
* ``wikipedia.csv``, ``wikipedia_k_selection.csv`` (Fig. 6, :mod:`.wikipedia`): a user per
  Wikipedia category against M_S from random articles;
* ``summary.json``, ``figures/`` (the paper's Figs. 4 and 6 values drawn in).

Documents: M_S from ``nips.train`` (1,000); the user holds ``protocol.user_docs`` of ``nips.test``
and the rest of it are their held-out documents (or, with ``user_path``, their own ``.txt`` files:
:func:`user_documents`); the dictionary is M_S's.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.errors import InputError, Problems, require_number
from fedmood.results import ResultsWriter
from fedmood.seeding import derived_seed
from fedmood.studies.topics.corpus import DEFAULT_NIPS, Vocabulary, read_nips, read_text_folder
from fedmood.studies.topics.figures import curves_figure, fractions_figure, heldout_figure, wikipedia_figure
from fedmood.studies.topics.gibbs import GibbsLDA, LDAConfig, topic_word_of
from fedmood.studies.topics.protocol import (
    Curves,
    choose_k,
    completion_perplexity,
    iterations_saved,
    local_and_personal,
    train_shared,
)
from fedmood.studies.topics.wikipedia import PAPER_FIG6, run_wikipedia
from fedmood.studies.topics.wikipedia import check_config as check_wikipedia
from fedmood.studies.topics.wikipedia import summarise as summarise_wikipedia

#: Fig. 4 of the paper: per-token log2-likelihood at iterations 1, 10 and 50 (read from its plot).
PAPER_FIG4 = {"local": {1: -10.95, 10: -10.55, 50: -10.27}, "personal": {1: -10.68, 10: -10.29, 50: -10.215}}


def check_config(cfg: dict) -> None:
    """Every value of a topics run, checked before any work; one InputError naming each problem."""
    p = Problems()
    lda, proto, fed = cfg.get("lda") or {}, cfg.get("protocol") or {}, cfg.get("federated") or {}
    require_number(p, "lda.n_topics", lda.get("n_topics"), low=2, integer=True, allow_none=True)
    grid = lda.get("k_grid")
    if (
        not isinstance(grid, list)
        or not grid
        or any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in grid)
    ):
        p.config("lda.k_grid", f"{grid!r}: a non-empty list of integers >= 2")
    require_number(p, "lda.alpha", lda.get("alpha"), low=0, low_open=True, allow_none=True)
    require_number(p, "lda.eta", lda.get("eta"), low=0, low_open=True)
    require_number(p, "min_count", cfg.get("min_count"), low=1, integer=True)
    require_number(p, "shared.iterations", (cfg.get("shared") or {}).get("iterations"), low=1, integer=True)
    require_number(p, "protocol.seeds", proto.get("seeds"), low=1, integer=True)
    require_number(p, "protocol.iterations", proto.get("iterations"), low=10, integer=True)  # iteration 10 is reported
    require_number(p, "protocol.user_docs", proto.get("user_docs"), low=1, high=499, integer=True)  # of NIPS's 500 test
    for key in ("local_docs", "fractions"):
        values = proto.get(key) if key == "local_docs" else cfg.get(key)
        name = f"protocol.{key}" if key == "local_docs" else key
        if (
            not isinstance(values, list)
            or not values
            or any(isinstance(v, bool) or not isinstance(v, int | float) for v in values)
        ):
            p.config(name, f"{values!r}: a non-empty list of numbers")
    if isinstance(cfg.get("fractions"), list) and any(
        not 0 < float(f) <= 1 for f in cfg["fractions"] if isinstance(f, int | float)
    ):
        p.config("fractions", f"{cfg['fractions']!r}: shares in (0, 1]")
    local, n_user = proto.get("local_docs"), proto.get("user_docs")
    if isinstance(local, list) and isinstance(n_user, int) and any(
        isinstance(n, int | float) and not 1 <= n <= n_user for n in local
    ):
        p.config("protocol.local_docs", f"{local!r}: each between 1 and protocol.user_docs")
    require_number(p, "federated.users", fed.get("users"), low=1, integer=True)
    require_number(p, "federated.num_rounds", fed.get("num_rounds"), low=1, integer=True)
    require_number(p, "federated.local_iterations", fed.get("local_iterations"), low=1, integer=True)
    if not isinstance(fed.get("secure"), bool):
        p.config("federated.secure", f"{fed.get('secure')!r}: true or false")
    elif fed["secure"] and isinstance(fed.get("users"), int) and fed["users"] < 3:
        p.config("federated.secure", f"SecAgg+ needs at least 3 devices; federated.users is {fed['users']}")
    if cfg.get("data_path") and not Path(cfg["data_path"]).is_dir():
        p.config("data_path", f"{cfg['data_path']}: no such folder (the NIPS corpus: nips.train, nips.test)")
    if cfg.get("user_path") and not Path(cfg["user_path"]).is_dir():
        p.config("user_path", f"{cfg['user_path']}: no such folder (the user's own documents, one .txt file each)")
    check_wikipedia(p, cfg.get("wikipedia") or {})
    p.raise_if_any()


def user_documents(
    cfg: dict, test: list[np.ndarray], test_source: str, vocab: Vocabulary
) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """The user's documents on the device and their held-out ones, as M_S's word indices; and their source.

    NIPS (no ``user_path``): the first ``protocol.user_docs`` of ``nips.test`` (``test``, encoded
    with M_S's dictionary, from ``test_source``), the rest held out. A
    user's own folder of ``.txt`` files: every fifth document held out, the others on the device;
    refused unless both sets keep words of M_S's dictionary.
    """
    if not cfg.get("user_path"):
        n_user = int(cfg["protocol"]["user_docs"])
        return test[:n_user], test[n_user:], test_source
    own = read_text_folder(cfg["user_path"])
    docs = [d for d in vocab.encode(own) if len(d)]
    user, held_out = [d for i, d in enumerate(docs) if i % 5 != 4], docs[4::5]
    if not user or not held_out:
        raise InputError(
            f"{cfg['user_path']}: {len(docs)} of its {len(own)} documents share words with the shared model's "
            f"{len(vocab)}-word dictionary; at least 5 are needed (every fifth is held out)"
        )
    return user, held_out, own.source


def _lda(cfg: dict, k: int) -> LDAConfig:
    lda = cfg["lda"]
    return LDAConfig(n_topics=int(k), alpha=lda.get("alpha"), eta=float(lda["eta"]))


def _curves(cfg, shared_counts, user, config, seeds) -> pd.DataFrame:
    rows = []
    iterations = int(cfg["protocol"]["iterations"])
    for seed in seeds:
        curves, _, _ = local_and_personal(shared_counts, user, config, iterations, seed)
        for it in range(iterations):
            rows.append({"seed": seed, "iteration": it + 1, "local": curves.local[it], "personal": curves.personal[it]})
    return pd.DataFrame(rows)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cost(cfg: dict, docs: list[np.ndarray], config: LDAConfig, v: int) -> pd.DataFrame:
    """Seconds per Gibbs iteration of a device's model against its number of documents."""
    rows, rng = [], np.random.default_rng(0)
    for n in cfg["cost"]["docs"]:
        sub = docs[: int(n)]
        model = GibbsLDA(config, v).start(sub, rng)
        model.sweep(rng)  # warm-up
        t0, reps = time.perf_counter(), 3
        for _ in range(reps):
            model.sweep(rng)
        tokens = int(sum(len(d) for d in sub))
        vocab = len(np.unique(np.concatenate(sub)))
        rows.append(
            {
                "docs": len(sub),
                "tokens": tokens,
                "vocabulary": vocab,
                "sec_per_iteration": (time.perf_counter() - t0) / reps,
            }
        )
    return pd.DataFrame(rows)


def run(cfg: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """The whole study; the summary (also ``summary.json``)."""
    from fedmood.studies.topics.federated import train_federated_shared

    check_config(cfg)
    train, test = read_nips(cfg.get("data_path") or DEFAULT_NIPS)
    vocab = Vocabulary.build(train, min_count=int(cfg["min_count"]))
    v = len(vocab)
    shared = vocab.encode(train)
    test_docs = vocab.encode(test)  # the user's (unless user_path) and the cost measurement's documents
    user, held_out, user_source = user_documents(cfg, test_docs, test.source, vocab)
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    seeds = [derived_seed(int(cfg["seed"]), s) for s in range(int(cfg["protocol"]["seeds"]))]
    t0 = time.perf_counter()

    ks, models, best = choose_k(
        cfg["lda"]["k_grid"], shared, held_out, v, lambda k: _lda(cfg, k), int(cfg["shared"]["iterations"]),
        int(cfg["seed"]), progress,
    )  # fmt: skip
    k = best if cfg["lda"].get("n_topics") is None else int(cfg["lda"]["n_topics"])
    config = _lda(cfg, k)
    writer.table("k_selection", ks)
    m_s = models.get(k) or train_shared(shared, config, v, int(cfg["shared"]["iterations"]), int(cfg["seed"]))
    counts = m_s.own_counts()

    curves = _curves(cfg, counts, user, config, seeds)
    writer.table("curves", curves)
    mean = curves.groupby("iteration")[["local", "personal"]].mean()
    saved = [iterations_saved(Curves(list(g["local"]), list(g["personal"]))) for _, g in curves.groupby("seed")]
    if progress:
        print(f"[topics] K={k}: iteration 10 local {mean.loc[10, 'local']:.3f} personal {mean.loc[10, 'personal']:.3f}")

    fractions = []
    rng = np.random.default_rng(int(cfg["seed"]))
    for frac in cfg["fractions"]:
        idx = rng.permutation(len(shared))[: max(1, round(float(frac) * len(shared)))]
        part = train_shared([shared[i] for i in idx], config, v, int(cfg["shared"]["iterations"]), int(cfg["seed"]))
        c, _, _ = local_and_personal(part.own_counts(), user, config, 10, seeds[0])
        fractions.append(
            {"fraction": float(frac), "docs": len(idx), "local_it10": c.local[9], "personal_it10": c.personal[9]}
        )
    fractions = pd.DataFrame(fractions)
    fractions["gain_pct"] = 100 * (fractions["personal_it10"] - fractions["local_it10"]) / fractions["local_it10"].abs()
    writer.table("fractions", fractions)

    heldout = []
    iterations = int(cfg["protocol"]["iterations"])
    for n in sorted({min(int(n), len(user)) for n in cfg["protocol"]["local_docs"]}):  # a user's folder may hold fewer
        _, local, personal = local_and_personal(counts, user[:n], config, iterations, seeds[0])
        heldout.append(
            {
                "local_docs": n,
                "local_perplexity": completion_perplexity(local.topic_word(), held_out, config),
                "personal_perplexity": completion_perplexity(personal.topic_word(), held_out, config),
            }
        )
    heldout = pd.DataFrame(heldout)
    writer.table("heldout", heldout)

    fed_cfg = cfg["federated"]
    n_devices = int(fed_cfg["users"])
    per_device = [shared[i::n_devices] for i in range(n_devices)]
    secure = bool(fed_cfg["secure"])
    fed_counts, fed_history = train_federated_shared(
        per_device, config, v, int(fed_cfg["num_rounds"]), int(fed_cfg["local_iterations"]), int(cfg["seed"]), secure
    )
    c_fed, _, _ = local_and_personal(fed_counts, user, config, 10, seeds[0])
    pooled_it10 = float(curves.loc[(curves["seed"] == seeds[0]) & (curves["iteration"] == 10), "personal"].iloc[0])
    federated = pd.DataFrame(
        [
            {
                "shared_model": "pooled",
                "heldout_perplexity": completion_perplexity(m_s.topic_word(), held_out, config),
                "personal_it10": pooled_it10,  # the same run as Fig. 4's first seed
            },
            {
                "shared_model": f"federated ({n_devices} devices{', SecAgg+' if secure else ''})",
                "heldout_perplexity": completion_perplexity(topic_word_of(fed_counts, config.eta), held_out, config),
                "personal_it10": c_fed.personal[9],
            },
        ]
    )
    writer.table("federated", federated)
    writer.table("federated_history", pd.DataFrame(fed_history))

    rss0 = _peak_rss_mb()
    t_p = time.perf_counter()
    local_and_personal(counts, user, config, 10, seeds[0])
    personalise_sec = time.perf_counter() - t_p
    cost_table = cost(cfg, test_docs, config, v)
    writer.table("cost", cost_table)

    wiki_summary = {}
    if cfg["wikipedia"]["enabled"]:
        wiki_ks, wiki = run_wikipedia(cfg, lambda k: _lda(cfg, k), progress)
        writer.table("wikipedia_k_selection", wiki_ks)
        writer.table("wikipedia", wiki)
        writer.figure("fig6_wikipedia", wikipedia_figure(wiki, PAPER_FIG6))
        wiki_summary = summarise_wikipedia(wiki)

    at = cost_table.set_index("docs")["sec_per_iteration"]
    summary = {
        "user_documents": user_source,
        "k": k,
        "vocabulary": v,
        "local_ll_it1": float(mean.loc[1, "local"]),
        "personal_ll_it1": float(mean.loc[1, "personal"]),
        "local_ll_it10": float(mean.loc[10, "local"]),
        "personal_ll_it10": float(mean.loc[10, "personal"]),
        "local_ll_last": float(mean["local"].iloc[-1]),
        "personal_ll_last": float(mean["personal"].iloc[-1]),
        "gain_it10_pct": float(100 * (mean.loc[10, "personal"] - mean.loc[10, "local"]) / abs(mean.loc[10, "local"])),
        "iters_saved_pct": float(100 * np.nanmean(saved)),
        "heldout_ppl_local": float(heldout["local_perplexity"].iloc[-1]),
        "heldout_ppl_personal": float(heldout["personal_perplexity"].iloc[-1]),
        "fed_vs_pooled_ll": float(c_fed.personal[9] - pooled_it10),
        "fed_vs_pooled_ppl": float(federated["heldout_perplexity"].iloc[1] - federated["heldout_perplexity"].iloc[0]),
        "sec_per_iter_300docs": float(at.get(300, np.nan)),
        "personalise_sec_10_iterations": personalise_sec,
        "peak_rss_mb": max(rss0, _peak_rss_mb()),
        **wiki_summary,
        "seeds": len(seeds),
        "seconds": time.perf_counter() - t0,
    }
    writer.json("summary", summary)
    writer.figure("fig4_curves", curves_figure(curves, PAPER_FIG4))
    writer.figure("fig5_fractions", fractions_figure(fractions))
    writer.figure("heldout_perplexity", heldout_figure(heldout))
    return summary
