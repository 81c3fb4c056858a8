"""Everything the mood recommender's entry points check before any work, all problems at once.

:func:`check_config` looks at the resolved config only (every value's type and range, the data
source's path); :func:`check_data` then reads the configured data in full (every day log or every
rating row) and checks it against the config (the rating scale against ``model.y_range``, the
population against ``federation.clients_per_round``). Both raise
:class:`~fedmood.errors.InputError` naming each config key or file, line and field. They run before
a results folder is written, before clustering, training or Ray start.
"""

from __future__ import annotations

from dataclasses import fields

from fedmood.data.ratings import check_rating_range, check_rows_per_user, read_ratings_table
from fedmood.errors import InputError, Problems, require_number, require_path, require_range
from fedmood.federated.ray_cluster import address_problem
from fedmood.privacy.settings import PrivacySettings
from fedmood.studies.mood.data.activities import KINDS
from fedmood.studies.mood.data.logs import check_logs_folder
from fedmood.studies.mood.settings import FederationSettings
from fedmood.studies.mood.suggest import DISCRETIONARY_KINDS

SOURCES = ("synthetic", "logs", "ratings")


def _missing(value: object) -> bool:
    return value is None or str(value) in ("", "???")


def _check_training(cfg: dict, p: Problems) -> None:
    t = cfg.get("training") or {}
    require_number(p, "training.epochs", t.get("epochs"), low=1, integer=True)
    require_number(p, "training.batch_size", t.get("batch_size"), low=1, integer=True)
    require_number(p, "training.lr_max", t.get("lr_max"), low=0, low_open=True)
    require_number(p, "training.weight_decay", t.get("weight_decay"), low=0)
    require_number(p, "training.pct_start", t.get("pct_start"), low=0, high=1, low_open=True)
    require_number(p, "training.div_factor", t.get("div_factor"), low=0, low_open=True)
    require_number(p, "training.final_div_factor", t.get("final_div_factor"), low=0, low_open=True)
    m = cfg.get("model") or {}
    require_number(p, "model.n_factors", m.get("n_factors"), low=1, integer=True)
    require_range(p, "model.y_range", m.get("y_range"))
    pers = cfg.get("personalise") or {}
    if pers.get("enabled"):
        require_number(p, "personalise.epochs", pers.get("epochs"), low=0, integer=True)
        require_number(p, "personalise.lr", pers.get("lr"), low=0, low_open=True)
    require_number(p, "suggest_users", cfg.get("suggest_users", 0), low=0, integer=True)
    require_number(p, "n_suggestions", cfg.get("n_suggestions", 1), low=1, integer=True)
    s = cfg.get("suggest") or {}
    require_number(p, "suggest.hour", s.get("hour"), low=0, high=23, integer=True, allow_none=True)
    require_number(p, "suggest.window", s.get("window", 1), low=0, high=12, integer=True)
    if s.get("weekend") is not None and not isinstance(s.get("weekend"), bool):
        p.config("suggest.weekend", f"{s.get('weekend')!r} is not true, false or null")
    kinds = s.get("kinds", list(DISCRETIONARY_KINDS))
    if not isinstance(kinds, list) or not kinds or not set(kinds) <= set(KINDS):
        p.config("suggest.kinds", f"{kinds!r}: a non-empty list of activity kinds out of {', '.join(KINDS)}")
    require_number(p, "seed", cfg.get("seed"), low=0, integer=True)


def _check_data_config(cfg: dict, p: Problems) -> None:
    d = cfg.get("data") or {}
    source = d.get("source")
    if source not in SOURCES:
        p.config("data.source", f"must be one of {', '.join(SOURCES)}, got {source!r}")
        return
    require_number(p, "data.val_frac", d.get("val_frac"), low=0, high=1, low_open=True, high_open=True)
    if source != "ratings":
        require_number(p, "data.n_clusters", d.get("n_clusters"), low=1, integer=True)
        require_number(p, "data.cluster_max_iter", d.get("cluster_max_iter"), low=1, integer=True)
    if source == "synthetic" and _missing(d.get("logs_dir")):
        require_number(p, "data.n_users", d.get("n_users"), low=2, integer=True)
        require_number(p, "data.n_days", d.get("n_days"), low=1, integer=True)
        require_number(p, "data.n_activities", d.get("n_activities"), low=1, integer=True)
    if (cfg.get("federation") or {}).get("nodes") is not None:
        return  # a deployment: the data lives in the devices' stores
    for kind, key, wanted, example in (("logs", "logs_dir", "folder", "the folder of your day logs"),
                                       ("ratings", "ratings_path", "file", "a ratings file")):  # fmt: skip
        if source != kind:
            continue
        if _missing(d.get(key)):
            p.config(f"data.{key}", f"data={kind} needs {example}: data.{key}=/path/to/it")
        else:
            require_path(p, f"config key data.{key}", d[key], wanted)


def _check_federation(cfg: dict, p: Problems) -> None:
    f = cfg.get("federation") or {}
    known = {field.name for field in fields(FederationSettings)}
    for key in sorted(set(f) - known):
        p.config(f"federation.{key}", "is not a federation setting (see conf/federation/simulation.yaml)")
    require_number(p, "federation.local_epochs", f.get("local_epochs", 1), low=1, integer=True)
    require_number(p, "federation.clients_per_round", f.get("clients_per_round"), low=1, integer=True, allow_none=True)
    require_number(p, "federation.nodes", f.get("nodes"), low=1, integer=True, allow_none=True)
    require_number(p, "federation.min_replies", f.get("min_replies"), low=1, integer=True, allow_none=True)
    require_number(p, "federation.round_timeout", f.get("round_timeout", 1), low=0, low_open=True)
    require_number(p, "federation.phase_timeout", f.get("phase_timeout"), low=0, low_open=True, allow_none=True)
    require_number(p, "federation.client_num_cpus", f.get("client_num_cpus", 1), low=0, low_open=True)
    require_number(p, "federation.backend_num_cpus", f.get("backend_num_cpus", 1), low=1, integer=True)
    if f.get("ray_address") is not None and (why := address_problem(f["ray_address"])):
        p.config("federation.ray_address", why)
    if f.get("resume") and _missing(f.get("checkpoint")):
        p.config("federation.resume", "resume=true needs federation.checkpoint (the file to resume from)")


def population(cfg: dict) -> int | None:
    """The number of devices the config describes without reading data (``None``: read it first)."""
    f, d = cfg.get("federation") or {}, cfg.get("data") or {}
    if f.get("nodes") is not None:
        return int(f["nodes"])
    if d.get("source") == "synthetic" and _missing(d.get("logs_dir")):
        return int(d["n_users"])
    return None


def _check_population(cfg: dict, privacy: PrivacySettings | None, n_users: int, p: Problems, source: str) -> None:
    f = cfg.get("federation") or {}
    for key in ("clients_per_round", "min_replies"):
        val = f.get(key)
        if isinstance(val, int) and not isinstance(val, bool) and val > n_users:
            p.config(f"federation.{key}", f"{val} is more than the {n_users} devices of {source}")
    if privacy is not None and privacy.secagg.enabled:  # the clustering's secure sums hold every device
        p.absorb(privacy.secagg.check, n_users)


def check_config(cfg: dict) -> None:
    """Check every config value of a mood-recommender run; raises one InputError listing all problems."""
    p = Problems()
    _check_training(cfg, p)
    _check_data_config(cfg, p)
    _check_federation(cfg, p)
    privacy = p.absorb(PrivacySettings.from_cfg, cfg)
    if not p and (n := population(cfg)) is not None:
        _check_population(cfg, privacy, n, p, "this config")
    p.raise_if_any()


def check_data(cfg: dict) -> int:
    """Read the configured data in full and check it against the config; returns the device count.

    Day logs: every file of every user folder (all bad files reported at once). A ratings table:
    every row, and the rating scale against ``model.y_range``. Generated data is valid by
    construction (its user count comes from the config). Then the privacy ledger is set up as the
    run will set it up (noise for the target ε, distributed DP's shares and grid room).
    """
    d, fed = cfg["data"], cfg.get("federation") or {}
    p = Problems()
    n_items = int(d.get("n_clusters") or 0)
    if fed.get("nodes") is not None:
        n_users, source = int(fed["nodes"]), "the deployment"
    elif d["source"] == "ratings":
        table = read_ratings_table(d["ratings_path"])
        p.absorb(check_rows_per_user, table, d["ratings_path"])
        ratings = table["rating"].to_numpy()
        p.absorb(check_rating_range, ratings, cfg["model"]["y_range"], d["ratings_path"], "model.y_range")
        n_users, n_items, source = int(table["user"].nunique()), int(table["item"].nunique()), d["ratings_path"]
    elif d["source"] == "logs":
        n_users, source = check_logs_folder(d["logs_dir"]), d["logs_dir"]
    else:
        n_users, source = int(d["n_users"]), "this config"
    privacy = p.absorb(PrivacySettings.from_cfg, cfg)
    _check_population(cfg, privacy, n_users, p, source)
    if not p:
        _check_ledger(cfg, privacy, n_users, n_items, p)
    p.raise_if_any()
    return n_users


def _check_ledger(cfg: dict, privacy: PrivacySettings, n_users: int, n_items: int, p: Problems) -> None:
    from fedmood.privacy.central import PrivacyLedger
    from fedmood.studies.mood.model import shared_size

    fed = cfg["federation"]
    dim = shared_size(n_items, int(cfg["model"]["n_factors"]))
    rounds = int(fed.get("num_rounds") or cfg["training"]["epochs"])
    try:
        PrivacyLedger(privacy, n_users, fed.get("clients_per_round"), rounds, fed, dim)
    except InputError as err:
        p.found.extend(err.problems)
    except ValueError as err:
        p.add(f"privacy config ({privacy.mechanism})", str(err))
