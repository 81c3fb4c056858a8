"""The ServerApp's checkpoint: everything a killed run needs to go on as if it had not stopped.

Written atomically after every aggregated round (never after the last one: a run killed then is
resumed by re-running its last round). It holds the global item parameters, the cluster centres,
the per-round history, the run key under which devices keep their own parameters in their stores,
and the state of Python's and NumPy's global generators (Flower samples nodes with ``random``).
A resumed run with the same config continues from the next round and reaches the same model as an
uninterrupted one. :func:`config_fingerprint` refuses a checkpoint made under another config.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedmood.data.fingerprint import data_fingerprint
from fedmood.errors import InputError
from fedmood.results import atomic_write_with

FORMAT = 1
#: Config parts that must be equal for a checkpoint to be resumed.
FINGERPRINT_KEYS = ("seed", "data", "model", "training", "privacy")
FINGERPRINT_FEDERATION = ("num_rounds", "local_epochs", "clients_per_round", "nodes")


class CheckpointError(InputError):
    """A checkpoint that cannot be resumed (unreadable, another format or another config)."""


def new_run_key() -> str:
    """A fresh key naming one federated run (devices tag their stored state with it)."""
    return uuid.uuid4().hex[:12]


def config_fingerprint(cfg: dict) -> str:
    """Hash of the config parts and of the data a resumed run must share with the run that wrote the checkpoint."""
    part = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    part["federation"] = {k: cfg["federation"].get(k) for k in FINGERPRINT_FEDERATION}
    data = cfg.get("data") or {}
    if not cfg["federation"].get("nodes"):  # the data itself, not only its path (a deployment's is in the stores)
        source = data.get("ratings_path") if data.get("source") == "ratings" else data.get("logs_dir")
        part["data_files"] = data_fingerprint(source) if source else None
    return hashlib.sha256(json.dumps(part, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class ServerCheckpoint:
    """The server's state after round ``round``."""

    round: int
    run_key: str
    fingerprint: str
    arrays: dict[str, np.ndarray]
    centres: np.ndarray | None = None
    cluster_iterations: int = 0
    history: dict = field(default_factory=dict)  # RoundLog.state()
    py_random: list | None = None
    np_random: tuple | None = None

    @classmethod
    def capture(cls, rnd: int, run_key: str, fingerprint: str, arrays: dict[str, np.ndarray], **kw) -> ServerCheckpoint:
        """A checkpoint of round ``rnd`` with the global generators' current states."""
        return cls(rnd, run_key, fingerprint, arrays, py_random=_py_state(), np_random=np.random.get_state(), **kw)

    def restore_generators(self) -> None:
        """Set Python's and NumPy's global generators to their state at the checkpoint."""
        if self.py_random is not None:
            version, internal, gauss = self.py_random
            random.setstate((version, tuple(internal), gauss))
        if self.np_random is not None:
            np.random.set_state(self.np_random)


def _py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def save_checkpoint(path: str | Path, ckpt: ServerCheckpoint) -> Path:
    """Write ``ckpt`` to ``path`` atomically (one ``.npz``)."""
    name, keys, pos, has_gauss, cached = ckpt.np_random
    meta = {
        "format": FORMAT,
        "round": ckpt.round,
        "run_key": ckpt.run_key,
        "fingerprint": ckpt.fingerprint,
        "cluster_iterations": ckpt.cluster_iterations,
        "history": ckpt.history,
        "py_random": ckpt.py_random,
        "np_random": [name, int(pos), int(has_gauss), float(cached)],
        "array_names": sorted(ckpt.arrays),
    }
    arrays = {f"item.{k}": np.asarray(v) for k, v in ckpt.arrays.items()}
    if ckpt.centres is not None:
        arrays["centres"] = np.asarray(ckpt.centres)
    arrays["np_random_keys"] = np.asarray(keys)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    return atomic_write_with(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path: str | Path) -> ServerCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; :class:`CheckpointError` names the file."""
    path = Path(path)
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(bytes(data["meta"]).decode("utf-8"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable fedmood checkpoint ({exc})") from exc
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, expected {FORMAT}")
    name, pos, has_gauss, cached = meta["np_random"]
    return ServerCheckpoint(
        round=int(meta["round"]),
        run_key=str(meta["run_key"]),
        fingerprint=str(meta["fingerprint"]),
        arrays={k: data[f"item.{k}"] for k in meta["array_names"]},
        centres=data.get("centres"),
        cluster_iterations=int(meta["cluster_iterations"]),
        history=meta["history"],
        py_random=meta["py_random"],
        np_random=(name, data["np_random_keys"], pos, has_gauss, cached),
    )
