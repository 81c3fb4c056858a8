"""Anonymise a recording of one's own with a trained AAE (``aae.pt`` of ``experiments/aae.py``).

    python -m fedmood.studies.aae.anonymise --model results/aae/<run>/aae.pt --input my_walk.csv --output anon.npz

The input is a CSV with MotionSense's DeviceMotion columns (``attitude.*``, ``gravity.*``,
``rotationRate.*``, ``userAcceleration.*``, 50 Hz; other columns are ignored). It is cut into the
model's windows (128 samples every ``--stride``), reduced to the two magnitude channels, z-scored
with the model's training statistics, passed through the anonymiser and brought back to physical
units. The output (``.npz``, or ``.csv`` in long form) holds the anonymised windows and the sample
each starts at; it is written atomically.
"""

from __future__ import annotations

import argparse
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.data.motionsense import (
    Standardiser,
    magnitudes,
    read_recording_csv,
    sliding_windows,
    window_count,
)
from fedmood.errors import InputError, Problem, Problems, require_path
from fedmood.results import atomic_write_bytes, atomic_write_text
from fedmood.studies.aae.model import Autoencoder

CHANNEL_NAMES = ("rotation_magnitude", "acceleration_magnitude")


@dataclass
class Anonymiser:
    """A trained AAE with its z-scoring statistics and window width."""

    model: Autoencoder
    standardiser: Standardiser
    width: int

    @classmethod
    def load(cls, path: str | Path) -> Anonymiser:
        path = Path(path)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            raise InputError(Problem(f"--model {path}", f"{what}: expected an aae.pt of experiments/aae.py"))
        try:
            state = torch.load(path, weights_only=False, map_location="cpu")
            model = Autoencoder(hidden=int(state["hidden"]), arch=str(state.get("arch", "small")))
            model.load_state_dict(state["model"])
        except Exception as exc:  # a corrupt or foreign file fails in many ways (pickle, zip, keys, shapes)
            raise InputError(
                Problem(f"--model {path}", f"not an anonymiser checkpoint of experiments/aae.py ({type(exc).__name__})")
            ) from exc
        return cls(model, Standardiser(np.asarray(state["mean"]), np.asarray(state["std"])), int(state["width"]))

    def windows(self, data: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """Anonymised windows (N, 2, width) in physical units, and the sample each starts at."""
        n = window_count(len(data), self.width, stride)
        if n == 0:
            raise InputError(f"the recording has {len(data)} samples: fewer than one window of {self.width}")
        x = sliding_windows(magnitudes(data), self.width, stride)
        starts = np.arange(n) * stride
        out = self.model.transform(torch.as_tensor(self.standardiser(x))).numpy()
        return self.standardiser.inverse(out), starts


def write_output(path: Path, windows: np.ndarray, starts: np.ndarray) -> None:
    """``.npz`` (windows, start) or ``.csv`` (window, start, sample, one column per channel), atomically."""
    if path.suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, windows=windows, start=starts, channels=np.array(CHANNEL_NAMES))
        atomic_write_bytes(path, buf.getvalue())
    elif path.suffix == ".csv":
        n, _, width = windows.shape
        frame = pd.DataFrame(
            {
                "window": np.repeat(np.arange(n), width),
                "start": np.repeat(starts, width),
                "sample": np.tile(np.arange(width), n),
                **{name: windows[:, k, :].reshape(-1) for k, name in enumerate(CHANNEL_NAMES)},
            }
        )
        atomic_write_text(path, frame.to_csv(index=False))
    else:
        raise InputError(Problem(f"--output {path}", "must end in .npz or .csv"))


def check_args(args: argparse.Namespace) -> None:
    """Every argument, before the model is loaded or anything is read (all problems at once)."""
    p = Problems()
    if args.stride < 1:
        p.add("--stride", f"must be a whole number of samples >= 1, got {args.stride}")
    for option, path in (("--model", args.model), ("--input", args.input)):
        require_path(p, option, path, "file")
    out = Path(args.output)
    if out.is_dir():
        p.add(f"--output {out}", "is a folder: give a file name ending in .npz or .csv")
    elif out.suffix not in (".npz", ".csv"):
        p.add(f"--output {out}", "must end in .npz or .csv")
    elif out.parent.exists() and not out.parent.is_dir():
        p.add(f"--output {out}", f"{out.parent} is not a folder")
    p.raise_if_any()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="aae.pt of an experiments/aae.py run")
    ap.add_argument("--input", required=True, help="CSV recording with MotionSense's DeviceMotion columns")
    ap.add_argument("--output", required=True, help="where to write the anonymised windows (.npz or .csv)")
    ap.add_argument("--stride", type=int, default=10, help="samples between window starts (default 10)")
    args = ap.parse_args(argv)
    try:
        check_args(args)
        anonymiser = Anonymiser.load(args.model)
        windows, starts = anonymiser.windows(read_recording_csv(Path(args.input)), args.stride)
        if not np.isfinite(windows).all():
            raise RuntimeError("the anonymiser produced non-finite values; nothing was written")
        write_output(Path(args.output), windows, starts)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(windows)} anonymised windows of {windows.shape[2]} samples -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
