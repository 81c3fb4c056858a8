"""Figures of the mood study: MSE curves per model (the paper's Fig. 1 and 2, its final values drawn
in), and the suggestions' quality per model against the oracle."""

from __future__ import annotations

import pandas as pd

from fedmood.plotstyle import PAPER_LINE, colour, figure, finish

_STYLE = {"train": "-", "val": "--"}
#: The paper's Table I final MSEs (its own data: 1000 logs of 4 profiles; PySyft for federated).
PAPER_FINAL_MSE = {"centralised": {"train": 0.0469, "val": 0.0534}, "federated": {"train": 0.0528, "val": 0.0652}}


def mse_curves(metrics: pd.DataFrame, models: list[str] | None = None, title: str = ""):
    """MSE against epoch/round for the given models (all in ``metrics`` by default), with the
    paper's final validation MSE of each as a dotted line."""
    fig, ax = figure()
    for model in models or list(dict.fromkeys(metrics["model"])):
        for split, style in _STYLE.items():
            sub = metrics[(metrics["model"] == model) & (metrics["split"] == split)]
            if len(sub):
                ax.plot(sub["epoch"], sub["mse"], style, color=colour(model), label=f"{model} {split}")
        paper = PAPER_FINAL_MSE.get(model)
        if paper is not None:
            ax.axhline(paper["val"], **{**PAPER_LINE, "color": colour(model)}, label=f"paper {model} val (its data)")
    finish(ax, "epoch (centralised) / round (federated)", "MSE (mood scale -1..+1)", title)
    return fig


def suggestion_quality_figure(summary: pd.DataFrame):
    """Precision@3 and the true mood gain of the top suggestion per model, the oracle's gain drawn in."""
    fig, (left, right) = figure(2, width=4.6)
    models = list(summary["model"])
    colours = [colour(m) for m in models]
    left.bar(models, summary["p_at_k"], color=colours)
    left.set_ylim(0, 1)
    finish(left, "model", "precision@3 against the truth", "Ranking the feasible activities", legend=False)
    right.bar(models, summary["gain"], color=colours)
    right.axhline(float(summary["oracle_gain"].max()), **{**PAPER_LINE, "color": colour("oracle")}, label="oracle")
    finish(right, "model", "true mood gain of the top suggestion", "Following the top suggestion")
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    return fig
