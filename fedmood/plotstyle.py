"""One plotting style for every figure of every study.

The same colour for a model or a privacy mechanism wherever it appears, the paper's reference
values drawn the same way (black stars or dotted black lines, labelled "paper"), labelled axes with
units, a light grid. Figures are made with :func:`figure` and finished with :func:`finish`.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

#: A colour per model and per mechanism (colour-blind-safe Okabe-Ito and Tol hues), in every study.
COLOURS = {
    # the mood recommender and its baselines
    "centralised": "#0072B2",
    "federated": "#D55E00",
    "personalised": "#009E73",
    "popularity": "#999999",
    "oracle": "#000000",
    # privacy mechanisms
    "none": "#000000",
    "secagg": "#777777",
    "central_dp": "#CC79A7",
    "central_dp_secagg": "#882255",
    "distributed_dp": "#E69F00",
    "dpsgd": "#56B4E9",
    # MetaMF
    "metamf": "#0072B2",
    "nometamf": "#D55E00",
    # personal models
    "shared": "#999999",
    "local": "#E69F00",
    "personal": "#0072B2",
    "federated_personal": "#009E73",
    # the anonymiser
    "raw": "#999999",
    "aae": "#0072B2",
    "aae_federated": "#D55E00",
}
_FALLBACK = ("#44AA99", "#117733", "#332288", "#DDCC77", "#AA4499", "#88CCEE")
#: How a paper's value is drawn.
PAPER_POINT = {"color": "black", "marker": "*", "ms": 10, "ls": "none", "zorder": 5}
PAPER_LINE = {"color": "black", "ls": ":", "lw": 1.2}


def colour(name: str) -> str:
    """The colour of a model or mechanism (a stable fallback for a name not listed)."""
    return COLOURS.get(name) or _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


def figure(ncols: int = 1, width: float = 6.4, height: float = 4.2, **kwargs):
    """``(fig, axes)`` in the house style (one axis, or ``ncols`` side by side)."""
    with plt.style.context("default"):
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols if ncols > 1 else width, height), **kwargs)
    return fig, axes


def finish(ax, xlabel: str, ylabel: str, title: str = "", legend: bool = True, fontsize: int = 8) -> None:
    """Axis labels (with units), title, grid and legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize)
