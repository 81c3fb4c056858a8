"""One run of the threat study: train under a mechanism, attack what the server saw, audit, write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fedmood.privacy.settings import PrivacySettings
from fedmood.results import ResultsWriter
from fedmood.studies.mood.run import federated_summary_row, write_federated_only
from fedmood.threat_study.auditing import AuditResult, audit_central_dp, audit_distributed_dp, audit_dpsgd
from fedmood.threat_study.run import AttackedRun, attacked_run, attacks

#: attacks.csv's columns, in order (the issue's table, then the details).
COLUMNS = [
    "mechanism",
    "observer",
    "attack",
    "epsilon",
    "delta",
    "clients_per_round",
    "auc_within",
    "auc_within_low",
    "auc_within_high",
    "auc_pooled",
    "auc_prior",
    "tpr_at_5fpr",
    "epsilon_lower",
    "accountant_epsilon",
    "val_mse",
]


def audit(cfg: dict, attacked: AttackedRun) -> AuditResult | None:
    """The one-run audit that fits the run's mechanism (``None`` without DP)."""
    privacy, a = PrivacySettings.from_cfg(cfg), cfg["audit"]
    if not a.get("enabled", True) or not privacy.any_dp:
        return None
    k, seed = int(a["guesses"]) // 2, int(a["seed"])
    if privacy.dpsgd.enabled:
        run = attacked.run
        return audit_dpsgd(cfg, 0, run.centres, attacked.n_items, int(a["record_canaries"]), k, seed)
    if privacy.distributed_dp.enabled:
        return audit_distributed_dp(cfg, int(a["canaries"]), k, seed, n_users=attacked.n_users)
    return audit_central_dp(cfg, int(a["canaries"]), k, seed, n_users=attacked.n_users)


def run(cfg: dict, out_dir: str | Path) -> pd.DataFrame:
    """Attack and audit one mechanism; write the run's results folder and ``attacks.csv``; return its rows."""
    privacy = PrivacySettings.from_cfg(cfg)  # refuses impossible configurations before any work
    attacked = attacked_run(cfg, int(cfg["attacks"]["min_rows"]))
    write_federated_only(attacked.run, cfg, out_dir)
    summary = federated_summary_row(attacked.run)
    result = audit(cfg, attacked)
    rows = pd.DataFrame(attacks(attacked, int(cfg["attacks"]["bootstrap"])))
    rows.insert(0, "mechanism", privacy.mechanism)
    for key in ("epsilon", "delta", "clients_per_round", "val_mse", "protects_against", "noise_multiplier"):
        rows[key] = summary.get(key, float("nan"))
    rows["target_epsilon"] = privacy.target_epsilon if privacy.any_dp else float("nan")
    rows["epsilon_lower"] = result.epsilon_lower if result else float("nan")
    rows["accountant_epsilon"] = result.accountant_epsilon if result else float("nan")
    rows = rows[COLUMNS + [c for c in rows.columns if c not in COLUMNS]]
    writer = ResultsWriter(out_dir)
    writer.table("attacks", rows)
    if result is not None:
        writer.table("audit", pd.DataFrame([result.as_dict()]))
    return rows
