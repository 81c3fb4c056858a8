"""The threat study's part of the report: attack AUCs and audits per mechanism."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedmood.reporting import Section, experiment_of, figures_in, inside, markdown_table, read_config
from fedmood.threat_study.experiment import COLUMNS

STUDY = "Privacy against the server: attacks and audits"


def sections(folder: Path) -> list[Section]:
    """A sweep's collected ``attacks.csv`` (with its figure) or one attacked run's table."""
    folder = Path(folder)
    if not (folder / "attacks.csv").is_file():
        return []
    if experiment_of(folder) == "privacy_attacks" and inside(folder, "attacks.csv"):
        return []  # one run of a sweep: the sweep's table has it
    table = pd.read_csv(folder / "attacks.csv")
    body = "Attack AUC within items (0.5: the attacker learns nothing), with the audits' ε lower bounds.\n\n"
    body += markdown_table(table, "{:.3f}", [c for c in COLUMNS if c in table.columns])
    return [Section(STUDY, "Attacks per mechanism", folder, body, figures_in(folder), read_config(folder))]
