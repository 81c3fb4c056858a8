"""Check the message log of :func:`strategies.mods.audit.make_audit_mod` against what each device holds.

:func:`audit_violations` proves, message by message, that nothing a client sent carries its user
embedding, a raw fragment, a mood label or a rating: only item parameters of the expected shapes
(masked under SecAgg+), aggregate statistics and the SecAgg+ protocol's own keys and shares.

Under a privacy mechanism it holds the run to a stricter rule: nothing per client but the
protected model leaves a device. No metric (only a FedAvg weight of exactly 1), no clustering
statistic in the clear, no personalisation report, no suggestion, no plain ``num_examples``; under
SecAgg+ not a single plain array.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.common import bytes_to_ndarray

from fedmood.keys import (
    CLIENT_SECONDS,
    DPSGD_DELTA,
    DPSGD_EPSILON,
    DPSGD_NOISE,
    FIT_SECONDS,
    NUM_EXAMPLES,
    TRAIN_MSE,
    TRAIN_ROWS,
    USER,
    VAL_MSE,
    VAL_MSE_AFTER,
    VAL_MSE_BEFORE,
    VAL_N,
    VAL_ROWS,
    VAL_SSE,
)
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.data.local import load_local_data
from fedmood.studies.mood.model import GLOBAL_KEYS

#: Names of the aggregate metrics a client may report.
AGGREGATE_METRICS = {
    TRAIN_MSE,
    VAL_SSE,
    VAL_N,
    VAL_MSE,
    NUM_EXAMPLES,
    CLIENT_SECONDS,
    FIT_SECONDS,
    TRAIN_ROWS,
    DPSGD_EPSILON,
    DPSGD_DELTA,
    DPSGD_NOISE,
    "norm_bit",
    "loss",
    "num_examples",
    "code",
    "message",
    # personalisation's report: the device's index (its node is known to the server anyway), its
    # validation MSE before/after fine-tuning, its row counts
    USER,
    VAL_MSE_BEFORE,
    VAL_MSE_AFTER,
    VAL_ROWS,
}
#: Keys of the SecAgg+ protocol records (public keys, encrypted shares, masked vectors, shares).
SECAGG_KEYS = {"pk1", "pk2", "dsts", "ctxts", "masked_params", "nids", "shares"}
ALLOWED_RECORDS = {
    "arrays",
    "metrics",
    "stats",
    "personalisation",
    "secaggplus_configs",
    "fitres.parameters",
    "fitres.metrics",
    "fitres.num_examples",
    "fitres.status",
    "evaluateres.loss",
    "evaluateres.num_examples",
    "evaluateres.metrics",
    "evaluateres.status",
}
STATS_KEYS = {"marginals", "dominant", "counts"}


@dataclass
class AuditReport:
    """What was audited and every violation found."""

    messages: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    masked_vectors: int = 0
    plain_item_arrays: int = 0
    violations: list[str] = field(default_factory=list)


def _contains(haystack: np.ndarray, needle: np.ndarray, atol: float = 1e-7) -> bool:
    """Whether ``needle`` occurs as a contiguous run in ``haystack`` (both flattened)."""
    h, n = np.asarray(haystack, dtype=np.float64).ravel(), np.asarray(needle, dtype=np.float64).ravel()
    if len(n) == 0 or len(h) < len(n):
        return False
    windows = np.lib.stride_tricks.sliding_window_view(h, len(n))
    return bool(np.any(np.all(np.abs(windows - n) <= atol, axis=1)))


def _numbers(value) -> list[float]:
    if isinstance(value, list):
        return [float(v) for v in value if isinstance(v, (int, float))]
    return [float(value)] if isinstance(value, (int, float)) else []


def _protected_violations(where: str, sent: dict, secagg: bool) -> list[str]:
    """What a device under a privacy mechanism must not send: anything per client but the model."""
    out = []
    for name, rec in sent.items():
        if name == "error":
            continue
        if name in ("stats", "personalisation", "suggestions"):
            out.append(f"{where}: '{name}' sent in the clear under a privacy mechanism")
        elif rec["kind"] == "arrays" and secagg and any(a["values"] for a in rec["arrays"].values()):
            out.append(f"{where}: plain array record '{name}' under SecAgg+")
        elif name in ("metrics", "fitres.num_examples"):
            for key, val in rec["values"].items():
                if key not in (NUM_EXAMPLES, "num_examples") or float(val) != 1.0:
                    out.append(f"{where}: '{name}.{key}' = {val!r} is per-client under a privacy mechanism")
        elif name == "fitres.metrics" and rec["values"]:
            out.append(f"{where}: fit metrics {sorted(rec['values'])} sent under a privacy mechanism")
    return out


def audit_violations(
    folder: str | Path, cfg: dict, n_items: int, quantization_range: int = 2**22, allow_suggestions: bool = False
) -> AuditReport:
    """Audit every logged message in ``folder`` (one ``node-<partition>.jsonl`` per device)."""
    privacy = PrivacySettings.from_cfg(cfg)
    report = AuditReport()
    k = int(cfg["model"]["n_factors"])
    item_shapes = {(n_items, k), (n_items, 1)}
    for path in sorted(Path(folder).glob("node-*.jsonl")):
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            entry = json.loads(line)
            where = f"{path.name}:{lineno} ({entry['message_type']} {entry['stage']})"
            data = load_local_data(cfg["data"], int(entry["partition"]), int(cfg["seed"]))
            secrets = {"user embedding": np.asarray(entry["device"].get("user_factors.weight", []))}
            row_counts = {len(data.ratings), len(data.train), len(data.val)}
            report.messages += 1
            report.by_type[entry["message_type"]] = report.by_type.get(entry["message_type"], 0) + 1
            if privacy.protected:
                report.violations += _protected_violations(where, entry["sent"], privacy.secagg.enabled)
            sent_numbers: list[np.ndarray] = []
            for name, rec in entry["sent"].items():
                if name == "error":
                    continue
                if name not in ALLOWED_RECORDS and not (allow_suggestions and name == "suggestions"):
                    report.violations.append(f"{where}: record '{name}' is not an allowed record")
                    continue
                if rec["kind"] == "arrays":
                    for key, arr in rec["arrays"].items():
                        values = as_array(arr)
                        sent_numbers.append(values)
                        shape = tuple(arr["shape"])
                        if name == "stats" and key in STATS_KEYS:
                            continue
                        if name == "fitres.parameters" and entry["stage"] == "collect_masked_vectors" and values.size:
                            report.violations.append(f"{where}: plain parameters sent next to the masked vector")
                        if shape not in item_shapes:
                            report.violations.append(f"{where}: array '{key}' of shape {shape} is not item-shaped")
                        elif name == "arrays" and key not in GLOBAL_KEYS:
                            report.violations.append(f"{where}: array '{key}' is not an item parameter")
                        else:
                            report.plain_item_arrays += 1
                else:
                    for key, val in rec["values"].items():
                        if name == "secaggplus_configs":
                            if key not in SECAGG_KEYS:
                                report.violations.append(f"{where}: unexpected SecAgg+ key '{key}'")
                            if key == "masked_params":
                                # Judged on all the arrays together: a masked value lies below the
                                # quantization range with probability 2^-10, so one small array (a
                                # bias) alone would look unmasked about once in a thousand messages.
                                masked = [bytes_to_ndarray(decode_bytes(b)).ravel() for b in val]
                                report.masked_vectors += len(masked)
                                joined = np.concatenate(masked) if masked else np.zeros(0)
                                if joined.size and joined.max() < quantization_range:
                                    report.violations.append(f"{where}: a 'masked' vector looks unmasked")
                            continue
                        if key not in AGGREGATE_METRICS and not (allow_suggestions and name == "suggestions"):
                            report.violations.append(f"{where}: '{name}.{key}' is not an aggregate metric")
                        nums = _numbers(val)
                        if isinstance(val, list) and len(val) in row_counts:
                            report.violations.append(f"{where}: '{name}.{key}' has one value per row")
                        sent_numbers.append(np.asarray(nums))
            flat = np.concatenate([a.ravel() for a in sent_numbers]) if sent_numbers else np.zeros(0)
            for label, secret in secrets.items():
                if secret.size and _contains(flat, secret):
                    report.violations.append(f"{where}: the {label} was sent")
            if _contains(flat, data.ratings[: min(20, len(data.ratings))], atol=0):
                report.violations.append(f"{where}: a run of the user's moods/ratings was sent")
            if data.fragments is not None and _contains(flat, data.fragments[:8].ravel(), atol=0):
                report.violations.append(f"{where}: the user's raw fragments were sent")
    return report


def decode_bytes(value) -> bytes:
    """Bytes recorded by the audit mod."""
    return base64.b64decode(value["bytes"])


def as_array(entry: dict) -> np.ndarray:
    """A recorded array."""
    return np.asarray(entry["values"], dtype=entry["dtype"]).reshape(entry["shape"])
