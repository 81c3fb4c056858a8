"""Where the project's own folders are (no heavy imports, so any entry point can use it)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"


def with_absolute_paths(config: dict, keys: tuple[str, ...]) -> dict:
    """``config`` with its relative path settings among ``keys`` made absolute (relative to the project)."""
    for key in keys:
        if config.get(key) and config[key] != "???" and not Path(config[key]).is_absolute():  # ???: Hydra's unset
            config[key] = str(PROJECT_ROOT / config[key])
    return config
