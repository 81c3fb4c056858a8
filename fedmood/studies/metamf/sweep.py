"""The β sweep's table and figures: ΔMAE@β = MAE@β / MAE@1.0 per data set, model and user group.

:class:`CollectBetaSweep` (a Hydra callback) gathers every run's ``summary.csv`` when the multirun
ends and writes ``beta_sweep.csv`` (dataset, model, β, group, MAE, MSE, ΔMAE@β), the same as
markdown tables (``beta_sweep.md``: β by model x group, per data set) and one figure per
data set in the style of Müllner et al.'s talk (ΔMAE@β against β, MetaMF and NoMetaMF on one
plot, one panel per user group). ``python -m fedmood.studies.metamf.sweep <sweep folder>`` collects again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedmood.plotstyle import colour, figure, finish
from fedmood.results import CollectSweep, ResultsWriter, atomic_write_text, collect_main, run_summaries

GROUPS = ("All", "Low", "Med", "High")


def delta_mae(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``delta_mae`` (MAE over the same data set, model and group's MAE at β = 1)."""
    base = table[table["beta"] == 1.0].set_index(["dataset", "model", "group"])["mae"]
    keys = list(zip(table["dataset"], table["model"], table["group"], strict=True))
    table = table.copy()
    table["delta_mae"] = [row_mae / base.get(k, float("nan")) for row_mae, k in zip(table["mae"], keys, strict=True)]
    return table


def beta_figure(table: pd.DataFrame, dataset: str):
    """ΔMAE@β against β for MetaMF and NoMetaMF, one panel per user group."""
    fig, axes = figure(len(GROUPS), width=3.2, height=3.2, sharey=True)
    sub = table[table["dataset"] == dataset]
    for ax, group in zip(axes, GROUPS, strict=True):
        for model, g in sub[sub["group"] == group].groupby("model"):
            g = g.sort_values("beta")
            ax.plot(
                g["beta"],
                g["delta_mae"],
                marker="o",
                color=colour(model),
                label={"metamf": "MetaMF", "nometamf": "NoMetaMF"}.get(model, model),
            )
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        finish(ax, "β (share of ratings revealed)", "ΔMAE@β = MAE@β / MAE@1.0" if ax is axes[0] else "", group,
               legend=ax is axes[0])  # fmt: skip
        ax.invert_xaxis()
    fig.suptitle(f"{dataset}: accuracy under a privacy budget")
    fig.tight_layout()
    return fig


def markdown_tables(table: pd.DataFrame) -> str:
    """ΔMAE@β (and MAE) by β for each data set: models x groups as columns, β as rows."""
    out = []
    for dataset in sorted(table["dataset"].unique()):
        sub = table[table["dataset"] == dataset]
        models = [m for m in ("metamf", "nometamf") if m in set(sub["model"])] or sorted(sub["model"].unique())
        for metric, title in (("delta_mae", "ΔMAE@β"), ("mae", "test MAE")):
            wide = sub.pivot_table(index="beta", columns=["model", "group"], values=metric).sort_index(ascending=False)
            cols = [(m, g) for m in models for g in GROUPS if (m, g) in wide.columns]
            head = " | ".join(f"{m} {g}" for m, g in cols)
            lines = [f"### {dataset}: {title}", "", f"| β | {head} |", "|---" * (len(cols) + 1) + "|"]
            for beta, row in wide[cols].iterrows():
                lines.append(f"| {beta:g} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
            out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def collect(sweep_dir: str | Path) -> pd.DataFrame:
    """One table of every run in ``sweep_dir`` with ΔMAE@β, and a figure per data set, written there."""
    table = delta_mae(run_summaries(sweep_dir))
    table = table.sort_values(["dataset", "model", "group", "beta"], ascending=[True, True, True, False])
    writer = ResultsWriter(sweep_dir)
    writer.table("beta_sweep", table)
    atomic_write_text(Path(sweep_dir) / "beta_sweep.md", markdown_tables(table))
    for dataset in table["dataset"].unique():
        writer.figure(f"delta_mae_{dataset}", beta_figure(table, dataset))
    return table


class CollectBetaSweep(CollectSweep):
    """Hydra callback: collect the β sweep's table and figures when the multirun ends."""

    collect = staticmethod(collect)
    columns = ("dataset", "model", "beta", "group", "mae", "mse", "delta_mae")
    float_format = "{:.4f}"


if __name__ == "__main__":
    collect_main(collect, "fedmood.studies.metamf.sweep")
