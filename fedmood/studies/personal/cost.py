"""On-device cost of personalisation: wall time and peak memory of one user's fine-tuning.

Measured in a fresh Python process (``python -m fedmood.studies.personal.cost <payload>``) that imports only
what a device needs (torch and the model/trainer modules), as a device would run it: load the
Shared model, fine-tune it on the user's first n windows on one CPU thread. Peak memory is the
process's high-water resident set size (``VmHWM``: Python, torch and the data included), and its
growth during the fine-tuning alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fedmood.studies.personal.model import FeatureMLP
from fedmood.studies.personal.train import FitConfig, personalise


def _status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` in MB (Linux); the peak RSS from getrusage elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(payload: dict) -> dict[str, float]:
    """Personalise the payload's model on its windows; seconds, peak RSS and its growth (MB)."""
    torch.set_num_threads(1)
    model = FeatureMLP(payload["n_features"], payload["n_classes"], payload["hidden"])
    model.load_state_dict(payload["state"])
    x, y, cfg = payload["x"], payload["y"], FitConfig(**payload["cfg"])
    personalise(model, x[:1], y[:1], FitConfig(epochs=1), seed=0)  # warm-up: torch's lazy initialisation
    before = _status_mb("VmHWM")
    t0 = time.perf_counter()
    personalise(model, x, y, cfg, seed=0)
    seconds = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    return {"seconds": seconds, "peak_rss_mb": peak, "rss_growth_mb": peak - before}


def personalisation_cost(shared: FeatureMLP, x: np.ndarray, y: np.ndarray, cfg: FitConfig) -> dict[str, float]:
    """Seconds, peak RSS (MB) and its growth while personalising ``shared`` on (x, y), in a fresh process."""
    payload = {
        "n_features": shared.body[0].in_features,
        "n_classes": shared.head.out_features,
        "hidden": shared.head.in_features,
        "state": {k: v.clone() for k, v in shared.state_dict().items()},
        "x": np.asarray(x, np.float32),
        "y": np.asarray(y, np.int64),
        "cfg": asdict(cfg),
    }
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.pt"
        torch.save(payload, path)
        proc = subprocess.run(
            [sys.executable, "-m", "fedmood.studies.personal.cost", str(path)], capture_output=True, text=True, env=env
        )
    if proc.returncode != 0:
        raise RuntimeError(f"the personalisation cost process failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure(torch.load(sys.argv[1], weights_only=False))))
