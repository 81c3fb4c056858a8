"""Table 2 of Malekzadeh et al. (IoTDI 2019) on MotionSense: every transform, the same evaluation.

Rows (``methods`` in ``conf/aae.yaml``): ``raw``, ``resample_10hz``, ``resample_5hz``, ``ssa_12``,
``ssa_1``, ``rep`` (the AAE without DecReg), ``aae``, ``aae_federated`` (the same AAE trained with
FedAvg on Flower, one client per training subject: :mod:`fedmood.studies.aae.federated`). The run folder
gets ``table2.csv`` (written after every row, so a long run shows its progress; its ``attacker`` column
names the identity attacker's weights, ``attacker.json`` where and when it was trained), ``table2.md``
(ours next to the paper's), the anonymiser's checkpoint ``aae.pt`` (for
:mod:`fedmood.studies.aae.anonymise`), the training histories, and the figures (raw vs anonymised windows;
the 2-D embedding by user and by activity).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedmood.data.motionsense import SHORT_TRIALS, Standardiser, load_recordings, make_windows
from fedmood.paths import PROJECT_ROOT
from fedmood.results import ResultsWriter, atomic_write_text, atomic_write_with
from fedmood.studies.aae.baselines import resample_roundtrip, ssa_reconstruct
from fedmood.studies.aae.classify import ClassifierConfig
from fedmood.studies.aae.evaluate import Protocol, Transform, evaluate, identity_attacker, prepare
from fedmood.studies.aae.model import Autoencoder
from fedmood.studies.aae.paper import LABELS, PAPER_TABLE2
from fedmood.studies.aae.train import AAEConfig, train_aae


def save_anonymiser(path: Path, aae: Autoencoder, standardiser: Standardiser, width: int, cfg: AAEConfig) -> None:
    """The anonymiser with what it needs to transform new recordings (layout, z-scoring statistics, window)."""
    payload = {
        "model": aae.state_dict(),
        "hidden": cfg.hidden,
        "arch": cfg.arch,
        "mean": standardiser.mean,
        "std": standardiser.std,
        "width": width,
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))


def model_transform(aae: Autoencoder) -> Transform:
    return lambda x: aae.transform(torch.as_tensor(x)).numpy()


def train_anonymiser(proto: Protocol, cfg: AAEConfig, seed: int, progress: bool) -> tuple[Autoencoder, list[dict]]:
    """The AAE (or REP, ``cfg.dec_reg=False``) on the anonymiser's training windows."""
    users = proto.aae_subjects
    w = proto.aae_train
    return train_aae(w.x, w.activity, w.identity(users), len(users), len(w.activities), cfg, seed, progress)


def train_federated_anonymiser(
    proto: Protocol, cfg: AAEConfig, seed: int, progress: bool
) -> tuple[Autoencoder, list[dict]]:
    """The AAE trained with FedAvg on Flower, one client per training subject holding its own windows;
    its identity heads measured on the same subjects' short trials (which no client trains on)."""
    from fedmood.studies.aae.federated import run_federated_aae

    w, users = proto.aae_train, proto.aae_subjects
    clients = [(w.x[w.subject == s], w.activity[w.subject == s]) for s in users]
    short = proto.act_train.take(np.flatnonzero(np.isin(proto.act_train.trial, SHORT_TRIALS)))
    short = short.take(np.flatnonzero(np.isin(short.subject, users)))
    return run_federated_aae(clients, len(w.activities), cfg, seed, progress, (short.x, short.identity(users)))


def first_head_accuracy(history: list[dict]) -> float:
    """The federated identity heads' held-out accuracy (%) after the first adversaries round (DecReg,
    or EncReg for REP): how well they identify the users before the AAE has learnt to hide them."""
    for r in history:
        found = [r[k] for k in ("dec_reg_heldout_acc", "enc_reg_heldout_acc") if k in r]
        if found:
            return float(found[0])
    return float("nan")


def _adaptive(row: pd.Series) -> str:
    """The adaptive attacker's accuracy, or "–" for a run from before it was measured."""
    value = row.get("id_acc_adaptive", float("nan"))
    return "–" if pd.isna(value) else f"{value:.2f}"


def markdown_table(table: pd.DataFrame) -> str:
    """Our Table 2 next to the paper's."""
    lines = [
        "| Method | ACT F1 (ours) | ACT F1 (paper) | ID acc (ours) | ID acc (paper) | ID F1 (ours) | ID F1 (paper) "
        "| ID acc, adaptive attacker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        paper = PAPER_TABLE2.get(r["method"].replace("_federated", ""), (float("nan"),) * 3)
        lines.append(
            f"| {LABELS.get(r['method'], r['method'])} | {r['act_f1']:.2f} ± {r['act_f1_sd']:.2f} | {paper[0]:.2f} "
            f"| {r['id_acc']:.2f} | {paper[1]:.2f} | {r['id_f1']:.2f} | {paper[2]:.2f} | {_adaptive(r)} |"
        )
    attackers = sorted(set(table["attacker"].dropna())) if "attacker" in table else []
    measured_with = (
        f" ID figures measured with the paper's attacker of weights {', '.join(attackers)} (attacker.json: where "
        "and when it was trained; another machine trains another attacker from the same seed)."
        if attackers
        else ""
    )
    return "\n".join(lines) + (
        "\n\nChance level for identity: 1/24 = 4.17 %. The adaptive attacker (not in the paper) fits a linear "
        "discriminant on random convolutional features of *transformed* training windows: it can run the "
        f"anonymiser (fedmood/studies/aae/evaluate.py: adaptive_identity_scores).{measured_with}\n"
    )


def _tell(say: Callable[..., None], label: str, line: str) -> None:
    say(f"[aae] {label}: {line}", flush=True)


@dataclass(frozen=True)
class StudyConfigs:
    """The typed settings of a run, built (and so checked) before any work."""

    classifier: ClassifierConfig
    attacker: ClassifierConfig
    aae: AAEConfig
    federated: AAEConfig
    attacker_seed: int = 0


def study_configs(cfg: dict) -> StudyConfigs:
    """Every setting group of ``conf/aae.yaml`` as its dataclass; a bad value or method fails here by name."""
    unknown = [m for m in cfg["methods"] if m not in LABELS]
    if unknown:
        raise ValueError(f"methods: unknown method {unknown[0]!r} (known: {', '.join(LABELS)})")
    built = {}
    for group, make in (("classifier", ClassifierConfig), ("attacker", ClassifierConfig), ("aae", AAEConfig)):
        try:
            built[group] = make(**cfg[group])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{group}: {exc}") from exc
    try:
        federated = AAEConfig(**{**cfg["aae"], **cfg.get("federated", {})})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"federated: {exc}") from exc
    attacker_seed = cfg.get("attacker_seed", 0)
    if not isinstance(attacker_seed, int) or isinstance(attacker_seed, bool) or attacker_seed < 0:
        raise ValueError(f"attacker_seed: {attacker_seed!r} is not a seed (an integer >= 0)")
    if "aae_federated" in cfg["methods"] and federated.pretrain_epochs:
        raise ValueError(
            f"aae.pretrain_epochs={federated.pretrain_epochs}: the federated AAE has no pretraining phase; "
            "set federated.pretrain_epochs=0 (or leave aae_federated out of methods)"
        )
    return StudyConfigs(built["classifier"], built["attacker"], built["aae"], federated, attacker_seed)


def run(cfg: dict, out_dir: str | Path, progress: bool = True) -> pd.DataFrame:
    """Compute the configured rows of Table 2 and write the run folder."""
    configs = study_configs(cfg)
    torch.set_num_threads(int(cfg.get("threads", 2)))
    seed = int(cfg["seed"])
    say = print if progress else (lambda *_a, **_k: None)
    recordings = load_recordings(cfg.get("data_path"), cfg.get("cache_dir"))
    writer = ResultsWriter(out_dir)
    writer.config(cfg)
    proto = prepare(make_windows(recordings, width=int(cfg["window"]["width"]), stride=int(cfg["window"]["stride"])))
    say(
        f"[aae] windows: activity {len(proto.act_train)}/{len(proto.act_test)}, identity "
        f"{len(proto.id_train)}/{len(proto.id_test)}, anonymiser training {len(proto.aae_train)}",
        flush=True,
    )
    clf_cfg, aae_cfg = configs.classifier, configs.aae
    t0 = time.perf_counter()
    attacker, provenance = identity_attacker(
        proto,
        configs.attacker,
        configs.attacker_seed,
        lambda m: say(f"[aae] attacker {m}", flush=True),
        cfg.get("cache_dir") or PROJECT_ROOT / ".cache",
    )
    writer.json("attacker", provenance)  # which attacker every ID figure of this run was measured with
    say(f"[aae] identity attacker ready ({time.perf_counter() - t0:.0f}s)", flush=True)
    ssa_window = int(cfg.get("ssa_window", 16))
    transforms: dict[str, Transform] = {
        "raw": lambda x: x,
        "resample_10hz": partial(resample_roundtrip, rate_hz=10.0),
        "resample_5hz": partial(resample_roundtrip, rate_hz=5.0),
        "ssa_12": partial(ssa_reconstruct, components=2, window_size=ssa_window),
        "ssa_1": partial(ssa_reconstruct, components=1, window_size=ssa_window),
    }
    rows, models = [], {}
    for method in cfg["methods"]:
        t0, extra = time.perf_counter(), {}
        if method in ("aae", "rep"):
            aae, history = train_anonymiser(proto, replace(aae_cfg, dec_reg=method == "aae"), seed, progress)
            writer.table(f"{method}_history", pd.DataFrame(history))
            models[method] = aae
            transform = model_transform(aae)
        elif method == "aae_federated":
            aae, history = train_federated_anonymiser(proto, configs.federated, seed, progress)
            writer.table(f"{method}_history", pd.DataFrame(history))
            extra["id_head_acc"] = first_head_accuracy(history)
            models[method] = aae
            transform = model_transform(aae)
        else:
            transform = transforms[method]
        tell = partial(_tell, say, LABELS.get(method, method))
        row = {"method": method, **evaluate(transform, proto, attacker, clf_cfg, int(cfg["eval_seeds"]), tell), **extra}
        row["attacker"] = provenance["weights"]
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        say(
            f"[aae] {LABELS.get(method, method)}: ACT F1 {row['act_f1']:.2f} ± {row['act_f1_sd']:.2f}, "
            f"ID acc {row['id_acc']:.2f}, ID F1 {row['id_f1']:.2f} ({row['seconds']:.0f}s)",
            flush=True,
        )
        writer.table("table2", pd.DataFrame(rows))
    table = pd.DataFrame(rows)
    from fedmood.studies.aae.figures import table2_figure

    writer.figure("table2", table2_figure(table))
    atomic_write_text(Path(out_dir) / "table2.md", markdown_table(table))
    for method, model in models.items():  # aae.pt, rep.pt, aae_federated.pt: each anonymiser trained
        settings = configs.federated if method == "aae_federated" else aae_cfg
        save_anonymiser(Path(out_dir) / f"{method}.pt", model, proto.standardiser, proto.aae_train.x.shape[2], settings)
    if "aae" in models:
        from fedmood.studies.aae.figures import embedding_figure, windows_figure

        writer.figure("windows_raw_vs_anonymised", windows_figure(proto, models["aae"], seed))
        writer.figure("embedding_by_user_and_activity", embedding_figure(proto, models["aae"], seed))
    return table
