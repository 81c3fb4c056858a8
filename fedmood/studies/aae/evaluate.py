"""The study's evaluation protocol (Malekzadeh et al., Table 2) for any window transform.

* Activity (utility): a fresh CNN trained on *transformed* subject-split training windows, tested
  on transformed windows of the 4 unseen test subjects; macro-F1, mean ± sd over seeds.
* Identity (privacy): one CNN trained on *raw* trial-split training windows (every subject's long
  trials: the adversary knows the raw data), applied to the transformed short-trial windows;
  accuracy and macro-F1 (chance: 1/24 = 4.2 %).
* Identity, adaptive (beyond the paper): an attacker who can run the transform on its own labelled
  windows (the anonymiser ships to every phone) fits a linear discriminant on frozen, seeded random
  convolutional features of the *transformed* training windows (:func:`adaptive_identity_scores`).

Every transform maps z-scored windows to z-scored windows (statistics of the subject split's
training windows). The anonymiser itself is trained on the long trials of the 20 training subjects
only: it never sees a test subject, nor a window the identity attack is tested on.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from fedmood.classification import class_statistics, lda_head, predict, scores
from fedmood.data.motionsense import SHORT_TRIALS, SUBJECTS, Standardiser, Windows, subject_split, trial_split
from fedmood.results import atomic_write_text, atomic_write_with
from fedmood.seeding import torch_seeded
from fedmood.studies.aae.classify import ClassifierConfig, fit_classifier, new_classifier
from fedmood.studies.aae.model import WindowCNN

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass
class Protocol:
    """The windows of both splits (z-scored) and of the anonymiser's training set."""

    act_train: Windows
    act_test: Windows
    id_train: Windows
    id_test: Windows
    aae_train: Windows
    standardiser: Standardiser

    @property
    def aae_subjects(self) -> list[int]:
        return sorted(set(self.aae_train.subject.tolist()))


def _scaled(w: Windows, z: Standardiser) -> Windows:
    return Windows(z(w.x), w.activity, w.subject, w.trial, w.activities)


def prepare(windows: Windows) -> Protocol:
    """Split, z-score (subject split's training statistics) and select the anonymiser's training windows."""
    act_train, act_test = subject_split(windows)
    z = Standardiser.fit(act_train.x)
    id_train, id_test = trial_split(windows)
    aae_train = act_train.take(np.flatnonzero(~np.isin(act_train.trial, SHORT_TRIALS)))
    return Protocol(*(_scaled(w, z) for w in (act_train, act_test, id_train, id_test, aae_train)), z)


#: With ``validation``, the identity attacker selects its epoch on this share of its training windows
#: (drawn at random, as the paper's code does: the short trials are its test windows).
ATTACKER_VALIDATION_SHARE = 0.2


def attacker_cache_key(proto: Protocol, cfg: ClassifierConfig, seed: int) -> str:
    """What the attacker's weights depend on: its training windows and labels, its settings, the seed."""
    h = hashlib.sha256()
    for part in (proto.id_train.x, proto.id_train.subject, proto.id_train.trial):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(f"{sorted(asdict(cfg).items())}|{seed}|{ATTACKER_VALIDATION_SHARE}|{torch.__version__}".encode())
    return h.hexdigest()[:16]


def weights_digest(model: torch.nn.Module) -> str:
    """A short fingerprint of a model's weights (sha-256 over its state dict, in key order)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _provenance(model: torch.nn.Module, seconds: float) -> dict[str, object]:
    """Where and when an attacker was trained: seeded training repeats on a machine, not across machines."""
    return {
        "weights": weights_digest(model),
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
    }


def identity_attacker(
    proto: Protocol,
    cfg: ClassifierConfig,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[torch.nn.Module, dict[str, object]]:
    """The adversary: an identity classifier trained on raw (z-scored) trial-split training windows;
    with ``cfg.validation`` the epoch of best macro-F1 on a random fifth of them (trained on the rest).

    Returns the model and its provenance (:func:`weights_digest` of its weights, when and on what
    machine it was trained): every figure measured with it can name the attacker it was measured with.
    With ``cache_dir`` the trained weights are kept there (``aae-attacker-<key>.pt``, written
    atomically, beside ``aae-attacker-<key>.json``: the provenance) and a later run on the same windows
    with the same settings and seed loads them instead of training again (:func:`attacker_cache_key`).
    A cached file whose weights differ from its provenance's digest is refused.
    """
    if cache_dir is None:
        return _timed_attacker(proto, cfg, seed, progress)
    path = Path(cache_dir) / f"aae-attacker-{attacker_cache_key(proto, cfg, seed)}.pt"
    sidecar = path.with_suffix(".json")
    if path.is_file():
        model = new_classifier(cfg, proto.id_train.x.shape[1], proto.id_train.x.shape[2], len(SUBJECTS))
        model.load_state_dict(torch.load(path, map_location="cpu"))
        digest = weights_digest(model)
        provenance: dict[str, object] = json.loads(sidecar.read_text()) if sidecar.is_file() else {"weights": digest}
        if provenance.get("weights") != digest:
            raise ValueError(
                f"{path}: weights {digest} differ from those recorded in {sidecar} ({provenance.get('weights')}); "
                "delete both files to train the attacker again"
            )
        if progress:
            where = f"trained {provenance['trained']} on {provenance['platform']}, " if "trained" in provenance else ""
            progress(f"loaded from {path} (same windows, settings and seed; {where}weights {digest})")
        return model.eval(), provenance
    model, provenance = _timed_attacker(proto, cfg, seed, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_with(path, lambda f: torch.save(model.state_dict(), f))
    atomic_write_text(sidecar, json.dumps(provenance, indent=2))
    return model, provenance


def _timed_attacker(
    proto: Protocol, cfg: ClassifierConfig, seed: int, progress: Callable[[str], None] | None
) -> tuple[torch.nn.Module, dict[str, object]]:
    t0 = time.perf_counter()
    model = _train_attacker(proto, cfg, seed, progress)
    return model.eval(), _provenance(model, time.perf_counter() - t0)


def _train_attacker(
    proto: Protocol, cfg: ClassifierConfig, seed: int, progress: Callable[[str], None] | None
) -> torch.nn.Module:
    x, y = proto.id_train.x, proto.id_train.identity(SUBJECTS)
    if not cfg.validation:
        return fit_classifier(x, y, len(SUBJECTS), cfg, seed, progress=progress)
    held = np.random.default_rng(seed).permutation(len(x))[: int(len(x) * ATTACKER_VALIDATION_SHARE)]
    val = np.zeros(len(x), dtype=bool)
    val[held] = True
    return fit_classifier(x[~val], y[~val], len(SUBJECTS), cfg, seed, val=(x[val], y[val]), progress=progress)


def evaluate(
    transform: Transform,
    proto: Protocol,
    attacker: torch.nn.Module,
    cfg: ClassifierConfig,
    seeds: int = 5,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Table 2's numbers for one transform: ACT F1 mean/sd (over ``seeds``), ID accuracy and F1."""
    train_x, train_y, test_x = transform(proto.act_train.x), proto.act_train.activity, transform(proto.act_test.x)
    val = None
    if cfg.validation:  # as the paper: train on the long trials, select the epoch on the short ones
        short = np.isin(proto.act_train.trial, SHORT_TRIALS)
        train_x, train_y, val = train_x[~short], train_y[~short], (train_x[short], train_y[short])
    n_act = len(proto.act_train.activities)
    f1 = []
    for seed in range(seeds):
        tell = (lambda line, k=seed: progress(f"activity classifier {k + 1}/{seeds}, {line}")) if progress else None
        clf = fit_classifier(train_x, train_y, n_act, cfg, seed, val=val, progress=tell)
        f1.append(scores(proto.act_test.activity, predict(clf, test_x))["macro_f1"])
        if progress:
            progress(f"activity classifier {seed + 1}/{seeds}: macro-F1 {f1[-1]:.2f}")
    ident = scores(proto.id_test.identity(SUBJECTS), predict(attacker, transform(proto.id_test.x)))
    return {
        "act_f1": float(np.mean(f1)),
        "act_f1_sd": float(np.std(f1, ddof=1)) if len(f1) > 1 else 0.0,
        "id_acc": ident["accuracy"],
        "id_f1": ident["macro_f1"],
        **adaptive_identity_scores(transform, proto),
    }


#: The adaptive attacker's random features: filters per convolution (64 x width/4 features per window).
ADAPTIVE_HIDDEN = 64


@torch.no_grad()
def adaptive_identity_scores(transform: Transform, proto: Protocol, seed: int = 0) -> dict[str, float]:
    """Identity accuracy and macro-F1 (%) of an attacker who can apply ``transform`` to its own labelled
    windows: a linear discriminant (shrinkage 1e-3) on the frozen convolutional features of a seeded,
    untrained :class:`WindowCNN`, fitted on the transformed trial-split training windows and applied
    to the transformed short trials. No training, so it costs seconds; the global random state is
    left as it was."""
    train_x, test_x = transform(proto.id_train.x), transform(proto.id_test.x)
    labels = proto.id_train.identity(SUBJECTS)
    with torch_seeded(seed):
        net = WindowCNN(train_x.shape[1], train_x.shape[2], len(SUBJECTS), ADAPTIVE_HIDDEN, head="lda").eval()

    def features(x: np.ndarray) -> np.ndarray:
        return net.embed_all(x, batch_size=2048).numpy()

    stats = [class_statistics(features(train_x[labels == k]), int(k), len(SUBJECTS)) for k in np.unique(labels)]
    weights, biases, present = lda_head(*(sum(s[p] for s in stats) for p in ("count", "sum", "scatter")), 1e-3)
    predicted = np.flatnonzero(present)[(features(test_x) @ weights.T + biases).argmax(axis=1)]
    found = scores(proto.id_test.identity(SUBJECTS), predicted)
    return {"id_acc_adaptive": found["accuracy"], "id_f1_adaptive": found["macro_f1"]}
