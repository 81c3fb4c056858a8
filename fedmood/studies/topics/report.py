"""The topic-model study's part of the report: Fig. 4's numbers next to the paper's, and the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, markdown_table, read_config
from fedmood.studies.topics.experiment import PAPER_FIG4
from fedmood.studies.topics.wikipedia import PAPER_FIG6

STUDY = "Personal topic models (Servia-Rodriguez et al.)"


def sections(folder: Path) -> list[Section]:
    """A topics run in ``folder``: the likelihood curves at the paper's iterations, held-out perplexity,
    the federated shared model and the cost."""
    folder = Path(folder)
    if experiment_of(folder) != "topics" or not (folder / "summary.json").is_file():
        return []
    summary = json.loads((folder / "summary.json").read_text())
    curves = pd.read_csv(folder / "curves.csv").groupby("iteration")[["local", "personal"]].mean()
    rows = [
        {
            "iteration": it,
            "local": curves.loc[it, "local"] if it in curves.index else float("nan"),
            "paper_local": PAPER_FIG4["local"][it],
            "personal": curves.loc[it, "personal"] if it in curves.index else float("nan"),
            "paper_personal": PAPER_FIG4["personal"][it],
        }
        for it in sorted(PAPER_FIG4["local"])
    ]
    body = f"K = {summary['k']} (by held-out perplexity), {summary['seeds']} seeds; per-token log2-likelihood "
    body += "of the user's training tokens:\n\n" + markdown_table(pd.DataFrame(rows), "{:.3f}")
    shown = (
        "gain_it10_pct",
        "iters_saved_pct",
        "heldout_ppl_local",
        "heldout_ppl_personal",
        "fed_vs_pooled_ll",
        "fed_vs_pooled_ppl",
        "sec_per_iter_300docs",
        "peak_rss_mb",
    )
    body += "\n" + ", ".join(f"{k} = {summary[k]:.3f}" for k in shown if k in summary) + "\n"
    if (folder / "federated.csv").is_file():
        body += "\n" + markdown_table(pd.read_csv(folder / "federated.csv"), "{:.3f}")
    out = [Section(STUDY, "Local vs personal LDA on NIPS", folder, body, figures_in(folder), read_config(folder))]
    if (folder / "wikipedia.csv").is_file() and "wiki_runs" in summary:
        out.append(Section(STUDY, "A user per Wikipedia category (Fig. 6)", folder, _wikipedia(folder, summary)))
    return out


def _wikipedia(folder: Path, summary: dict) -> str:
    """Fig. 6's table: the gain at iteration 10 and the iterations saved per category, the paper's range."""
    table = pd.read_csv(folder / "wikipedia.csv")
    per = table.groupby("category").agg(
        docs=("docs", "mean"), gain_pct=("gain_pct", "mean"), iters_saved_pct=("iters_saved_pct", "mean")
    )
    s, paper = summary, PAPER_FIG6
    body = (
        f"K = {s['wiki_k']}; gain at iteration 10 per category (mean over seeds) "
        f"{s['wiki_gain_pct_min']:.2f}..{s['wiki_gain_pct_max']:.2f} %, average {s['wiki_gain_pct_mean']:.2f} % "
        f"(paper {paper['gain_pct_min']}..{paper['gain_pct_max']} %, average {paper['gain_pct_mean']} %); "
        f"iterations saved {s['wiki_iters_saved_pct']:.1f} % (paper {paper['iters_saved_pct']} %) in the "
        f"{s['wiki_reached_runs']} of {s['wiki_runs']} runs that reach the local model's final likelihood.\n\n"
    )
    return body + markdown_table(per.reset_index(), "{:.2f}")
