"""On-device cost of personalisation: wall time and peak memory of one user's fine-tuning.

Measured in a fresh process (``spawn``), as a device would run it: load the Shared model, fine-tune
it on the user's first n windows. Peak memory is the process's peak resident set size (Python,
torch and the data included), and its growth during the fine-tuning alone.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from dataclasses import asdict

import numpy as np
import torch

from fedmood.personal.models import FeatureMLP
from fedmood.personal.train import FitConfig, personalise


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _measure(conn, payload: dict) -> None:
    torch.set_num_threads(1)
    model = FeatureMLP(payload["n_features"], payload["n_classes"], payload["hidden"])
    model.load_state_dict(payload["state"])
    x, y, cfg = payload["x"], payload["y"], FitConfig(**payload["cfg"])
    personalise(model, x[:1], y[:1], FitConfig(epochs=1), seed=0)  # warm-up: torch's lazy initialisation
    before = _peak_rss_mb()
    t0 = time.perf_counter()
    personalise(model, x, y, cfg, seed=0)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    conn.send({"seconds": seconds, "peak_rss_mb": peak, "rss_growth_mb": peak - before})
    conn.close()


def personalisation_cost(shared: FeatureMLP, x: np.ndarray, y: np.ndarray, cfg: FitConfig) -> dict[str, float]:
    """Seconds, peak RSS (MB) and its growth during personalising ``shared`` on (x, y), one CPU thread."""
    payload = {
        "n_features": shared.body[0].in_features,
        "n_classes": shared.head.out_features,
        "hidden": shared.head.in_features,
        "state": {k: v.clone() for k, v in shared.state_dict().items()},
        "x": np.asarray(x, np.float32),
        "y": np.asarray(y, np.int64),
        "cfg": asdict(cfg),
    }
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_measure, args=(child, payload))
    proc.start()
    child.close()
    try:
        result = parent.recv()
    except EOFError as exc:
        raise RuntimeError(f"the personalisation cost process failed (exit code {proc.exitcode})") from exc
    finally:
        proc.join()
    return result
