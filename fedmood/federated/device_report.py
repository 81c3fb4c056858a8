"""What a device shows its own user, kept off the server under every privacy mechanism.

Per-client metrics are data: a user's validation error on an item set, the number of rows they
logged, the ε their DP-SGD spent (a function of that number), their suggestions. Without a privacy
mechanism they travel to the server with the model, as before. Under any mechanism (SecAgg+,
central or distributed DP, DP-SGD) only the protected model leaves the device, and these figures
go into the device's own report instead:

* in a simulation (``federation.device_reports``: a folder) each device writes its report to
  ``<folder>/node-<partition>.json`` (atomically), and the experiment, which plays every user, reads
  them all back for its results: per-round training and validation errors (the same sums the
  server would have aggregated), each device's ε, personalisation and suggestions;
* on a real device with an encrypted store the report is a record of that store;
* elsewhere it is not kept.

The server's view therefore holds nothing per client but what the mechanism protects
(:func:`fedmood.studies.mood.message_audit.audit_violations` checks it message by message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fedmood.keys import (
    CLIENT_SECONDS,
    DPSGD_DELTA,
    DPSGD_EPSILON,
    DPSGD_NOISE,
    FIT_SECONDS,
    TRAIN_MSE,
    TRAIN_ROWS,
    VAL_N,
    VAL_SSE,
)
from fedmood.results import atomic_write_text

REPORT_RECORD = "device-report"  # the store record a deployed device keeps its report in
KINDS = ("round", "evaluation", "personalisation", "suggestions", "ranking")


def _report_path(folder: str | Path, partition: int) -> Path:
    return Path(folder) / f"node-{int(partition)}.json"


def _empty() -> dict[str, list]:
    return {kind: [] for kind in KINDS}


def add_to_report(cfg: dict, partition: int, kind: str, entry: Mapping, store=None) -> None:
    """Append ``entry`` (numbers, lists, strings) to this device's report under ``kind``.

    A node is served by one process at a time, so a read-modify-write of its own file is safe; the
    file is replaced atomically. ``store`` (an :class:`~fedmood.data.store.EncryptedStore`) is used
    when there is no report folder (a deployed device).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown device report kind {kind!r} (one of {KINDS})")
    folder = cfg["federation"].get("device_reports")
    if folder:
        path = _report_path(folder, partition)
        report = json.loads(path.read_text()) if path.exists() else _empty()
        report.setdefault(kind, []).append(dict(entry))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(report))
    elif store is not None:
        report = store.get_json(REPORT_RECORD) if REPORT_RECORD in store else _empty()
        report.setdefault(kind, []).append(dict(entry))
        store.put_json(REPORT_RECORD, report)


def read_reports(folder: str | Path) -> dict[int, dict[str, list]]:
    """Every device's report in ``folder``: ``{partition: {kind: [entries]}}``."""
    out = {}
    for path in sorted(Path(folder).glob("node-*.json")):
        out[int(path.stem.split("-", 1)[1])] = json.loads(path.read_text())
    return out


def read_rankings(reports: dict[int, dict[str, list]]) -> dict[str, dict[int, list[float]]]:
    """The devices' predicted mood per item, ``{model label: {user: [mood per item]}}`` (their last of each)."""
    out: dict[str, dict[int, list[float]]] = {}
    for report in reports.values():
        for entry in report.get("ranking", []):
            out.setdefault(str(entry["model"]), {})[int(entry["user"])] = list(entry["predicted"])
    return out


def _pooled(entries: list[dict], num: str, den: str) -> float:
    total = sum(float(e.get(den, 0.0)) for e in entries if num in e)
    return sum(float(e[num]) for e in entries if num in e) / total if total > 0 else float("nan")


def merge_reports(rounds: list[dict], reports: dict[int, dict[str, list]]) -> dict:
    """Fill a run's per-round rows from the devices' reports (in place); the per-device findings.

    Row ``r`` gets the pooled training MSE of round r's local epochs, the validation MSE of round
    r's global model (evaluated by the devices at the start of round r+1, and for the last round
    by the final ``evaluation``), the summed device seconds and, under DP-SGD, the largest ε any
    device has spent. Returns ``{"personalisation", "suggestions", "dpsgd"}`` (per-device lists, and
    the DP-SGD summary: ε max/mean, δ, noise multiplier, or ``{}``).
    """
    by_round: dict[int, list[dict]] = {}
    evaluation, personal, suggestions = [], [], []
    for _user, report in sorted(reports.items()):
        for entry in report["round"]:
            by_round.setdefault(int(entry["round"]), []).append(entry)
        evaluation += report["evaluation"]
        personal += [{k: v for k, v in e.items() if k != "round"} for e in report["personalisation"]]
        suggestions += [{k: v for k, v in e.items() if k != "round"} for e in report["suggestions"]]
    last, spent = len(rounds), 0.0
    for row in rounds:
        rnd = int(row["round"])
        entries = by_round.get(rnd, [])
        trained = [dict(e, sse=e[TRAIN_MSE] * e[TRAIN_ROWS]) for e in entries if TRAIN_MSE in e]
        row["train_mse"] = _pooled(trained, "sse", TRAIN_ROWS)
        later = evaluation if rnd == last else by_round.get(rnd + 1, [])
        row["val_mse"] = _pooled(later, VAL_SSE, VAL_N)
        row["client_seconds"] = sum(float(e.get(CLIENT_SECONDS, 0.0)) for e in entries)
        row["fit_seconds"] = sum(float(e.get(FIT_SECONDS, 0.0)) for e in entries)
        eps = [float(e[DPSGD_EPSILON]) for e in entries if DPSGD_EPSILON in e]
        if eps:  # ε only grows: the largest any device has spent by the end of this round
            spent = max(spent, *eps)
            row["epsilon"] = spent
    final_eps = []  # each device's latest DP-SGD report: its ε covers everything it trained
    for report in reports.values():
        private = [e for e in report["round"] if DPSGD_EPSILON in e]
        if private:
            final_eps.append(max(private, key=lambda e: int(e["round"])))
    dpsgd = {}
    if final_eps:
        values = [float(e[DPSGD_EPSILON]) for e in final_eps]
        dpsgd = {
            "epsilon": max(values),
            "epsilon_mean": sum(values) / len(values),
            "delta": max(float(e[DPSGD_DELTA]) for e in final_eps),
            "noise_multiplier": float(final_eps[0][DPSGD_NOISE]),
        }
    return {"personalisation": sorted(personal, key=lambda r: r["user"]), "suggestions": suggestions, "dpsgd": dpsgd}
