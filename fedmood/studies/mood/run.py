"""The mood recommender's federated run in Flower's simulation engine, and the tables of its results.

:func:`run_federated_simulation` runs the ``ServerApp`` and one ``ClientApp`` per user on Ray and
returns the run's history (read back from the devices' own reports under a privacy mechanism);
the table helpers turn a run's history into the results files every experiment writes
(:func:`write_federated_only` for federated-only runs: ``flwr run .``, the privacy experiments).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fedmood.federated.device_report import merge_reports, read_rankings, read_reports
from fedmood.keys import column
from fedmood.privacy.central import PrivacyLedger
from fedmood.privacy.settings import PrivacySettings
from fedmood.results import ResultsWriter
from fedmood.studies.mood.data.local import data_shape, load_all_local_data
from fedmood.studies.mood.figures import mse_curves
from fedmood.studies.mood.model import shared_size
from fedmood.studies.mood.run_config import config_from_context
from fedmood.studies.mood.server_app import FederatedRun, build_server_app
from fedmood.studies.mood.settings import FederationSettings
from fedmood.studies.mood.suggestion_quality import headline, model_quality, quality_summary

CENTRAL, FEDERATED = "centralised", "federated"


def run_federated_simulation(
    cfg: dict,
    client_mods: list | None = None,
    reports_dir: str | Path | None = None,
    wrap_grid=None,
    devices: list | None = None,
) -> FederatedRun:
    """The Flower run: one simulated SuperNode per user, ``run_simulation`` on Ray.

    ``client_mods`` wrap every client message (e.g. the privacy audit mod); ``wrap_grid(grid)``
    wraps the ServerApp's grid (e.g. to record what the server sees). Under a privacy mechanism
    the devices keep their metrics in their own reports (:mod:`fedmood.federated.device_report`):
    the experiment, which plays every user, reads them from ``reports_dir`` (a temporary folder
    if not given) into the run's history. With ``suggest.evaluate`` every device also puts its
    predicted mood per item there (never sent), read into ``run.rankings`` and measured against the
    truth into ``run.quality`` (on ``devices``, every user's data, if the caller already loaded them).
    """
    from fedmood.federated.simulation import simulate
    from fedmood.studies.mood.client_app import build_client_app

    fed = FederationSettings.of(cfg)
    logging.getLogger("flwr").setLevel(fed.flower_log_level)
    privacy = PrivacySettings.from_cfg(cfg)
    n_users, n_items = data_shape(cfg["data"], int(cfg["seed"]))
    dim = shared_size(n_items, int(cfg["model"]["n_factors"]))
    PrivacyLedger(privacy, n_users, fed.clients_per_round, fed.num_rounds, cfg["federation"], dim)  # refuses early
    protected = privacy.protected
    with tempfile.TemporaryDirectory(prefix="fedmood-reports-") as tmp:
        folder = Path(reports_dir) if reports_dir is not None else Path(tmp)
        cfg = {**cfg, "federation": {**cfg["federation"], "device_reports": str(folder)}}
        out: dict[str, FederatedRun] = {}
        server = build_server_app(lambda _ctx: cfg, lambda run, _cfg: out.setdefault("run", run), wrap_grid)
        client = build_client_app(lambda _ctx: cfg, client_mods)
        placement = simulate(server, client, n_users, fed.client_num_cpus, fed.backend_num_cpus, fed.ray_address)
        if "run" not in out:
            raise RuntimeError("the federated run ended without a result (see the Flower log above)")
        run = out["run"]
        run.ray_nodes = placement
        if placement:
            shown = ", ".join(f"{node[:8]}: {n}" for node, n in sorted(placement.items()))
            print(f"[federated] ClientApp actors on {len(placement)} Ray node(s) of {fed.ray_address} ({shown})")
        reports = read_reports(folder)
        if protected:
            apply_device_reports(run, reports)
        missing = [np.nan] * n_items  # a device that did not answer (a non-strict run)
        run.rankings = {
            label: np.array([by_user.get(u, missing) for u in range(n_users)], dtype=np.float64)
            for label, by_user in read_rankings(reports).items()
        }
    if run.rankings:
        devices = devices if devices is not None else load_all_local_data(cfg["data"], int(cfg["seed"]))
        run.quality = model_quality(cfg, devices, run.centres, run.rankings, baseline=True)
    return run


def apply_device_reports(run: FederatedRun, reports: dict) -> None:
    """The run's history, personalisation, suggestions and DP-SGD ε from the devices' own reports."""
    found = merge_reports(run.rounds, reports)
    run.personalisation, run.suggestions = found["personalisation"], found["suggestions"]
    if found["dpsgd"]:
        run.privacy.update(found["dpsgd"])


def metrics_table(model: str, rounds: list[dict]) -> pd.DataFrame:
    """Long-format metrics: one row per (epoch/round, split)."""
    rows = [
        {"model": model, "epoch": r["round"], "split": split, "mse": r[f"{split}_mse"], "seconds": r["seconds"]}
        for r in rounds
        for split in ("train", "val")
    ]
    return pd.DataFrame(rows)


def summary_row(model: str, rounds: list[dict]) -> dict:
    """Table I analogue: last train/val MSE and mean seconds per epoch."""
    secs = [r["seconds"] for r in rounds]
    return {
        "model": model,
        "train_mse": rounds[-1]["train_mse"],
        "val_mse": rounds[-1]["val_mse"],
        "sec_per_epoch": float(np.mean(secs)),
        "sec_per_epoch_after_first": float(np.mean(secs[1:])) if len(secs) > 1 else float(secs[0]),
    }


def federated_summary_row(run: FederatedRun) -> dict:
    """The federated run's summary row with its privacy columns (mechanism, noise, ε, δ, ...) and,
    where measured, its suggestions' quality (``federated_p3``, ``personalised_gain``, ...)."""
    row = summary_row(FEDERATED, run.rounds)
    row["sec_per_round"] = row["sec_per_epoch_after_first"]
    quality = headline(quality_summary(run.quality)) if len(run.quality) else {}
    return row | run.privacy | quality


def personalisation_table(run: FederatedRun) -> pd.DataFrame:
    """Per device: validation MSE of the federated model and of the device's personalised one."""
    table = pd.DataFrame(run.personalisation).rename(columns=column)
    if len(table):
        table["user"] = table["user"].astype(int)
        table["val_mse_change"] = table["val_mse_after"] - table["val_mse_before"]
    return table


def personalisation_summary(table: pd.DataFrame) -> dict:
    """Row-weighted validation MSE before/after personalisation and the share of devices it helped."""
    if not len(table):
        return {}
    rows = table[table.val_rows > 0]
    w = rows.val_rows
    return {
        "personal_val_mse_before": float((rows.val_mse_before * w).sum() / w.sum()),
        "personal_val_mse_after": float((rows.val_mse_after * w).sum() / w.sum()),
        "personal_users_improved": float((rows.val_mse_change < 0).mean()),
    }


def write_federated_only(run: FederatedRun, cfg: dict, out: str | Path | None = None) -> Path:
    """Results of a federated-only run (``flwr run .``, the privacy experiments): metrics, summary, figure."""
    out = Path(out) if out is not None else Path(cfg["results_root"]) / time.strftime("%Y-%m-%d_%H-%M-%S")
    writer = ResultsWriter(out)
    writer.config(cfg)
    metrics = metrics_table(FEDERATED, run.rounds)
    writer.table("metrics", metrics)
    writer.table("rounds_federated", pd.DataFrame(run.rounds))
    writer.table("summary", pd.DataFrame([federated_summary_row(run)]))
    personal = personalisation_table(run)
    if len(personal):
        writer.table("personalisation", personal)
    if len(run.quality):
        writer.table("suggestion_quality", run.quality)
    writer.figure(
        "mse_federated",
        mse_curves(metrics, [FEDERATED], f"Federated (Flower FedAvg), {run.privacy.get('mechanism', 'none')}"),
    )
    print(f"results: {out}", flush=True)
    return out


#: For ``flwr run .`` (``[tool.flwr.app.components]`` in pyproject): the mood recommender's
#: ServerApp, its results written to ``results_root`` from the run config.
app = build_server_app(config_from_context, lambda run, cfg: write_federated_only(run, cfg))
