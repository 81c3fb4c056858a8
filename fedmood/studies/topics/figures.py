"""Figures of the topic-model study: the paper's Figs. 4 and 6 (its values drawn in), Fig. 5, held-out perplexity."""

from __future__ import annotations

import pandas as pd

from fedmood.plotstyle import PAPER_LINE, PAPER_POINT, colour, figure, finish


def curves_figure(curves: pd.DataFrame, paper: dict[str, dict[int, float]]):
    """Per-token log2-likelihood of the user's tokens against Gibbs iterations, local vs personal
    (mean over seeds, ± one sd), with the paper's Fig. 4 values as stars."""
    fig, ax = figure()
    stats = curves.groupby("iteration")[["local", "personal"]].agg(["mean", "std"])
    for model, label in (("local", "Local (from scratch)"), ("personal", "Personal (from M_S)")):
        mean, sd = stats[(model, "mean")], stats[(model, "std")].fillna(0.0)
        ax.plot(mean.index, mean, color=colour(model), label=label)
        ax.fill_between(mean.index, mean - sd, mean + sd, color=colour(model), alpha=0.15)
        its = sorted(paper[model])
        ax.plot(its, [paper[model][i] for i in its], **{**PAPER_POINT, "color": colour(model)}, label=f"paper, {model}")
    finish(
        ax, "Gibbs iteration", "log2-likelihood per token (user's training tokens)", "Personal vs local topic models"
    )
    return fig


def fractions_figure(fractions: pd.DataFrame):
    """The personal model's gain at iteration 10 against the share of shared documents M_S saw (Fig. 5)."""
    fig, ax = figure()
    ax.plot(100 * fractions["fraction"], fractions["gain_pct"], marker="o", color=colour("personal"))
    finish(
        ax,
        "documents M_S was trained on (%)",
        "personal over local at iteration 10 (%)",
        "How much M_S needs to see",
        legend=False,
    )
    return fig


def heldout_figure(heldout: pd.DataFrame):
    """Held-out document-completion perplexity against the user's documents on the device."""
    fig, ax = figure()
    for model in ("local", "personal"):
        ax.plot(heldout["local_docs"], heldout[f"{model}_perplexity"], marker="o", color=colour(model), label=model)
    ax.set_xscale("log")
    finish(
        ax,
        "the user's documents on the device",
        "perplexity on held-out documents (lower is better)",
        "Beyond in-sample likelihood",
    )
    return fig


def wikipedia_figure(table: pd.DataFrame, paper: dict[str, float]):
    """Fig. 6: the personal model's gain at iteration 10 per Wikipedia category (mean ± sd over
    seeds), with the paper's range of gains shaded and its average dotted."""
    fig, ax = figure(width=7.5)
    stats = table.groupby("category")["gain_pct"].agg(["mean", "std"]).sort_values("mean")
    ax.barh(stats.index, stats["mean"], xerr=stats["std"].fillna(0.0), color=colour("personal"), alpha=0.8)
    ax.axvspan(paper["gain_pct_min"], paper["gain_pct_max"], color="black", alpha=0.08, label="paper's range")
    ax.axvline(paper["gain_pct_mean"], **PAPER_LINE, label="paper's average")
    ax.tick_params(axis="y", labelsize=7)
    finish(ax, "personal over local at iteration 10 (%)", "", "A user per Wikipedia category")
    return fig
