"""One config for both ways of running the federated apps.

``run_simulation`` (the Hydra experiment) hands the resolved Hydra config to the apps by closure.
``flwr run .`` hands them ``context.run_config`` from ``[tool.flwr.app.config]`` in pyproject (or
``--run-config``); :func:`config_from_context` maps it onto the same Hydra config: a key such as
``data.n-users`` becomes the override ``data.n_users=...``; ``num-server-rounds`` sets
``training.epochs`` (one round is one local epoch); ``privacy-mechanism`` picks the ``privacy``
group and ``engine`` the ``federation`` group (``simulation`` or ``deployment``); ``overrides`` is a
string of further Hydra overrides (space-separated, shell quoting), applied last.
"""

from __future__ import annotations

import shlex
from functools import lru_cache

from flwr.app import Context
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from fedmood.paths import CONF_DIR, with_absolute_paths

ALIASES = {"num-server-rounds": "training.epochs", "privacy-mechanism": "privacy", "engine": "federation"}


def run_config_overrides(run_config: dict) -> list[str]:
    """Hydra overrides equivalent to a Flower run config."""
    out, extra = [], []
    for key, val in sorted(run_config.items()):
        if key == "overrides":
            extra = shlex.split(str(val))
            continue
        dotted = ALIASES.get(key, key).replace("-", "_")
        out.append(f"{dotted}={'null' if val is None else val}")
    return out + extra


def compose_config(overrides: list[str], config_name: str = "mood") -> dict:
    """The resolved experiment config from ``conf/`` with Hydra overrides, as a plain dict."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    return prepare_config(OmegaConf.to_container(cfg, resolve=True))


def prepare_config(cfg: dict) -> dict:
    """Make paths absolute (apps may run elsewhere) and resolve the synthetic data folder.

    Not in a deployment (``federation.nodes`` set): there the data lives in the devices' stores.
    """
    from fedmood.studies.mood.data.generator import GeneratorConfig, ensure_generated
    from fedmood.studies.mood.validation import check_config

    with_absolute_paths(cfg, ("results_root",))
    data = with_absolute_paths(cfg["data"], ("cache_dir", "logs_dir", "ratings_path"))
    check_config(cfg)  # every config value, before anything is generated, read or started
    if data["source"] == "synthetic" and not data.get("logs_dir") and not cfg["federation"].get("nodes"):
        gen = GeneratorConfig(**{k: data[k] for k in GeneratorConfig.__dataclass_fields__})
        data["logs_dir"] = str(ensure_generated(gen, data["cache_dir"]))
    return cfg


@lru_cache(maxsize=8)
def checked_config(cfg) -> dict:
    """A Hydra run's config resolved and prepared, with every value and the data checked before any work."""
    from fedmood.studies.mood.validation import check_data

    config = prepare_config(OmegaConf.to_container(cfg, resolve=True))
    check_data(config)
    return config


def _config_from_items(items: tuple) -> dict:
    return compose_config(run_config_overrides(dict(items)))


def config_from_context(context: Context) -> dict:
    """The experiment config for an app started by ``flwr run`` (from ``context.run_config``)."""
    return _config_from_items(tuple(sorted(context.run_config.items())))
