"""The one results writer: every experiment writes its folder through it, atomically.

Each file is written to a temporary name in the same folder and renamed into place, so a reader
(or a crash) never sees a half-written file.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import yaml
from hydra.experimental.callback import Callback

#: A run folder holding this file failed or was interrupted (the file says why); collectors skip it.
FAILED = "FAILED"


def atomic_write_with(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Stream ``write(file)`` into ``path`` atomically (temporary file + rename), e.g. ``torch.save``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename)."""
    return atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


class ResultsWriter:
    """Writes a run's folder: resolved config, CSV tables, JSON and figures."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def config(self, cfg: dict) -> Path:
        """The resolved config, as ``config.yaml``."""
        return atomic_write_text(self.dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))

    def table(self, name: str, df: pd.DataFrame) -> Path:
        """A CSV table (``name`` without extension)."""
        return atomic_write_text(self.dir / f"{name}.csv", df.to_csv(index=False))

    def json(self, name: str, obj: object) -> Path:
        """A JSON document."""
        return atomic_write_text(self.dir / f"{name}.json", json.dumps(obj, indent=2, default=float))

    def figure(self, name: str, fig) -> Path:
        """A matplotlib figure as ``figures/<name>.png`` (the figure is closed)."""
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        return atomic_write_bytes(self.dir / "figures" / f"{name}.png", buf.getvalue())


def run_summaries(sweep_dir: str | Path, name: str = "summary") -> pd.DataFrame:
    """Every run's ``<name>.csv`` in a Hydra sweep folder, in one table with a ``run`` column.

    Runs marked :data:`FAILED` are skipped (their tables, if any, are not results).
    """
    sweep_dir = Path(sweep_dir)
    frames = []
    for path in sorted(sweep_dir.glob(f"*/{name}.csv")):
        if (path.parent / FAILED).exists():
            print(f"skipping {path.parent} (FAILED: {(path.parent / FAILED).read_text().strip()})", file=sys.stderr)
            continue
        df = pd.read_csv(path)
        df.insert(0, "run", path.parent.name)
        frames.append(df)
    if not frames:
        raise FileNotFoundError(f"no run tables (*/{name}.csv) in {sweep_dir}")
    return pd.concat(frames, ignore_index=True)


class CollectSweep(Callback):
    """A Hydra callback that collects a sweep when the multirun ends and prints its main columns.

    Subclasses set :attr:`collect` (``sweep_dir -> table``, writing the sweep's files) and
    :attr:`columns`; :func:`collect_main` is the same for ``python -m <module> <sweep folder>``.
    """

    collect: Callable[[str | Path], pd.DataFrame]
    columns: tuple[str, ...] = ()
    float_format: str = "{:.4g}"

    def on_multirun_end(self, config, **kwargs) -> None:
        table = type(self).collect(config.hydra.sweep.dir)
        cols = [c for c in self.columns if c in table.columns] or list(table.columns)
        print("\n" + table[cols].to_string(index=False, float_format=self.float_format.format))
        print(f"\nsweep results: {config.hydra.sweep.dir}")


def collect_main(collect: Callable[[str | Path], pd.DataFrame], module: str) -> None:
    """``python -m <module> <sweep folder>``: collect the sweep again (e.g. after resuming it)."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python -m {module} <sweep folder>")
    print(collect(sys.argv[1]).to_string(index=False))
