"""Figures: train/validation MSE curves per model (the paper's Fig. 1 and 2) and both together."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

_STYLE = {"train": "-", "val": "--"}


def mse_curves(metrics: pd.DataFrame, models: list[str] | None = None, title: str = "") -> plt.Figure:
    """MSE against epoch/round for the given models (all in ``metrics`` by default)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in models or list(dict.fromkeys(metrics["model"])):
        for split, style in _STYLE.items():
            sub = metrics[(metrics["model"] == model) & (metrics["split"] == split)]
            if len(sub):
                ax.plot(sub["epoch"], sub["mse"], style, label=f"{model} {split}")
    ax.set_xlabel("epoch (centralised) / round (federated)")
    ax.set_ylabel("MSE")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig
