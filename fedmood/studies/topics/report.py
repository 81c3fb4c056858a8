"""The topic-model study's part of the report: Fig. 4's numbers next to the paper's, and the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, markdown_table, read_config
from fedmood.studies.topics.experiment import PAPER_FIG4

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
    return [Section(STUDY, "Local vs personal LDA on NIPS", folder, body, figures_in(folder), read_config(folder))]
