"""What a study contributes to the one report of every study (:mod:`fedmood.report`).

Each study has a ``report.py`` with ``sections(folder)``: the sections it recognises in one results
folder (one of its runs, or a sweep it collected), each a Markdown body (our numbers next to the
paper's) and the figures to show beside it. This module holds what they share.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml


@dataclass
class Section:
    """One part of the report: a study's table(s) and figures from one results folder."""

    study: str  # e.g. "Mood recommender"
    title: str  # e.g. "Table I: centralised vs federated"
    folder: Path
    body: str  # Markdown
    figures: list[Path] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    @property
    def date(self) -> str:
        """When the folder's results were written (its newest file)."""
        times = [p.stat().st_mtime for p in self.folder.iterdir() if p.is_file()] or [self.folder.stat().st_mtime]
        return dt.datetime.fromtimestamp(max(times)).strftime("%Y-%m-%d %H:%M")


def read_config(folder: Path) -> dict:
    """The run's resolved ``config.yaml`` (empty when the folder has none)."""
    path = Path(folder) / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def experiment_of(folder: Path) -> str | None:
    """The ``experiment`` key of the run in ``folder`` (None: not a run folder)."""
    return read_config(folder).get("experiment")


def inside(folder: Path, marker: str) -> bool:
    """Whether an ancestor of ``folder`` holds ``marker`` (a run of a sweep already collected there)."""
    return any((parent / marker).is_file() for parent in Path(folder).parents)


def _cell(value: object, float_format: str) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else float_format.format(value)
    return str(value).replace("|", "\\|")


def markdown_table(df: pd.DataFrame, float_format: str = "{:.4f}", columns: Iterable[str] | None = None) -> str:
    """``df`` as a Markdown table (floats with ``float_format``, NaN left empty)."""
    cols = list(columns) if columns is not None else list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df[cols].itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, float_format) for v in row) + " |")
    return "\n".join(lines) + "\n"


def figures_in(folder: Path, *names: str) -> list[Path]:
    """The run's ``figures/<name>.png`` that exist (every figure when no names are given)."""
    fig_dir = Path(folder) / "figures"
    if not names:
        return sorted(fig_dir.glob("*.png"))
    return [fig_dir / f"{n}.png" for n in names if (fig_dir / f"{n}.png").is_file()]
