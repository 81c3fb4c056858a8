"""The mood recommender's part of the report: Table I next to the paper's, suggestions, the privacy sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, inside, markdown_table, read_config
from fedmood.studies.mood.suggestion_quality import quality_summary

STUDY = "Mood recommender (Lyness, \"Towards 'Her'\")"
#: The paper's Table I: train and validation MSE, seconds per epoch (1000 logs, 50 epochs; PySyft).
PAPER_TABLE1 = pd.DataFrame(
    [
        {"model": "centralised", "paper_train_mse": 0.0469, "paper_val_mse": 0.0534, "paper_sec_per_epoch": 2.0},
        {"model": "federated", "paper_train_mse": 0.0528, "paper_val_mse": 0.0652, "paper_sec_per_epoch": 26.2},
    ]
)


def _quality(folder: Path) -> str:
    path = folder / "suggestion_quality.csv"
    if not path.is_file():
        return ""
    per_user = pd.read_csv(path)
    summary = quality_summary(per_user)
    context, truth = per_user["context"].iloc[0], per_user["truth"].iloc[0]
    cols = ["model", "p_at_k", "ndcg_at_k", "gain", "oracle_gain", "non_discretionary", "non_discretionary_unfiltered"]
    return (
        f"\nSuggestions for {context}, against the truth ({truth}): precision@3, NDCG@3, the true mood gain of "
        "following the top suggestion (and the oracle's), the share of non-discretionary items shown "
        "(and in an unfiltered top 3). The paper has no such measure.\n\n" + markdown_table(summary, "{:.3f}", cols)
    )


def _comparison(folder: Path) -> Section:
    summary = pd.read_csv(folder / "summary.csv")
    table = summary.merge(PAPER_TABLE1, on="model", how="left")
    cols = ["model", "train_mse", "paper_train_mse", "val_mse", "paper_val_mse", "sec_per_epoch", "paper_sec_per_epoch"]
    body = markdown_table(table, "{:.4f}", [c for c in cols if c in table.columns])
    extra = json.loads((folder / "comparison.json").read_text())
    shown = {k: extra[k] for k in ("val_mse_ratio", "time_per_epoch_ratio", "cluster_ari") if k in extra}
    body += "\n" + ", ".join(f"{k} = {v:.3f}" for k, v in shown.items()) + "\n" + _quality(folder)
    figures = figures_in(folder, "mse_both", "suggestion_quality")
    return Section(STUDY, "Table I: centralised vs federated", folder, body, figures, read_config(folder))


def _federated_only(folder: Path) -> Section:
    summary = pd.read_csv(folder / "summary.csv")
    cols = [c for c in ("mechanism", "epsilon", "delta", "train_mse", "val_mse", "sec_per_round") if c in summary]
    body = markdown_table(summary, "{:.4g}", cols) + _quality(folder)
    return Section(STUDY, "A federated run", folder, body, figures_in(folder, "mse_federated"), read_config(folder))


def _privacy_sweep(folder: Path) -> Section:
    table = pd.read_csv(folder / "privacy_utility.csv")
    cols = ["mechanism", "noise_multiplier", "epsilon", "delta", "val_mse", "sec_per_round"]
    cols += [c for c in ("federated_p3", "federated_gain", "personalised_p3") if c in table.columns]
    body = "Validation MSE (and, where measured, suggestion quality) against the privacy spent.\n\n"
    return Section(STUDY, "Privacy-utility sweep", folder, body + markdown_table(table, "{:.4g}", cols),
                   figures_in(folder, "privacy_utility"))  # fmt: skip


def sections(folder: Path) -> list[Section]:
    """The mood study's sections in ``folder``: a comparison run, a federated-only run, a privacy sweep."""
    folder = Path(folder)
    if (folder / "privacy_utility.csv").is_file():
        return [_privacy_sweep(folder)]
    experiment = experiment_of(folder)
    if experiment == "mood" and (folder / "comparison.json").is_file():
        return [_comparison(folder)]
    if experiment in ("mood", "privacy_utility") and (folder / "summary.csv").is_file():
        return [] if inside(folder, "privacy_utility.csv") else [_federated_only(folder)]
    return []
