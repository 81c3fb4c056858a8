"""What a device keeps in its encrypted store (:mod:`fedmood.data.store`), and how it reads it back.

Records of one user's store:

* ``meta``: the user's index in the federation, id, number of fragments, format version;
* ``logs``: the raw day logs as written by the phone (``{file name: JSON document}``);
* ``fragments``: the hourly fragments cut from them, encoded for clustering (``slots``);
* ``labels``: each fragment's mood;
* ``user-state.<run>.r<round>``: the user's own model parameters (factors and bias) after a
  training round of run ``<run>``, the last two rounds kept, so a resumed run picks up the state
  of the round it resumes from; ``personal-state``: the parameters fine-tuned after training, and
  ``personal-items`` the device's own copy of the item parameters when those are fine-tuned too.

:func:`provision_store` fills a store from a folder of day logs (on a phone the logger would);
:func:`device_data_from_store` is what the ClientApp loads: the same rows and the same
train/validation split (:func:`fedmood.data.split.split_indices`) as the simulation's devices.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from fedmood.data.split import split_indices
from fedmood.data.store import EncryptedStore, StoreError, create_key_file
from fedmood.studies.mood.data.fragments import split_into_fragments
from fedmood.studies.mood.data.local import LocalData
from fedmood.studies.mood.data.logs import parse_day_log, read_day_log

FORMAT = 2  # 2: fragments carry their weekday/weekend flag (the suggestions' context)
STATE_PREFIX = "user-state."
PERSONAL_STATE = "personal-state"
KEEP_ROUNDS = 2
_STATE_NAME = re.compile(r"^user-state\.([0-9a-f]+)\.r(\d+)$")


def provision_store(store: EncryptedStore, user_folder: str | Path, user: int) -> dict:
    """Write one user's day logs (raw), fragments and labels into ``store``; returns its ``meta``."""
    files = sorted(Path(user_folder).glob("*.json"))
    if not files:
        raise FileNotFoundError(f"user folder {user_folder} has no *.json day logs")
    docs = {f.name: json.loads(f.read_text(encoding="utf-8")) for f in files}
    logs = [read_day_log(f) for f in files]  # validates every file, naming it on error
    frags = split_into_fragments(logs)
    store.put_json("logs", docs)
    store.put_arrays("fragments", slots=frags.encoded(), hours=frags.hours, weekend=frags.weekend())
    store.put_arrays("labels", moods=frags.moods)
    meta = {"format": FORMAT, "user": int(user), "user_id": frags.user_id, "fragments": len(frags.moods)}
    store.put_json("meta", meta)  # last: a store with ``meta`` is complete
    return meta


#: The store records of the model a device ends a run with (its suggestions come from them).
FINAL_MODEL, FINAL_MODEL_META = "final-model", "final-model-meta"


def node_store_paths(root: str | Path, node: int) -> tuple[Path, Path]:
    """Where node ``node``'s store and key file live under a devices folder: ``<root>/node-<i>/store``
    and ``<root>/node-<i>/store.key`` (the simulation's ``federation.stores`` and a deployment's nodes)."""
    folder = Path(root) / f"node-{node}"
    return folder / "store", folder / "store.key"


def node_store(root: str | Path, node: int) -> EncryptedStore:
    """Node ``node``'s store under a devices folder (:func:`node_store_paths`)."""
    return EncryptedStore.open(*node_store_paths(root, node))


def provision_devices(root: str | Path, logs_dir: str | Path, n_nodes: int | None = None) -> list[dict]:
    """One encrypted store per user folder of ``logs_dir`` (the first ``n_nodes``) under ``root``.

    Node ``i`` gets the ``i``-th user (folders sorted by name, as the simulation numbers them) and
    its own new key file (0600). Stores already provisioned are kept as they are.
    """
    from fedmood.studies.mood.data.logs import user_folders

    folders = user_folders(logs_dir)
    n_nodes = len(folders) if n_nodes is None else n_nodes
    if len(folders) < n_nodes:
        raise ValueError(f"{logs_dir}: {len(folders)} user folders for {n_nodes} nodes")
    metas = []
    for i in range(n_nodes):
        _, key_file = node_store_paths(root, i)
        if not key_file.exists():
            create_key_file(key_file)
        store = node_store(root, i)
        metas.append(store.get_json("meta") if "meta" in store else provision_store(store, folders[i], i))
    return metas


def refresh_fragments(store: EncryptedStore) -> dict:
    """Re-cut the stored raw logs into fragments and labels (after the logger added days)."""
    meta = dict(store.get_json("meta"))
    docs = store.get_json("logs")
    logs = [parse_day_log(f"{store.root}/logs:{name}", doc) for name, doc in sorted(docs.items())]
    frags = split_into_fragments(logs)
    store.put_arrays("fragments", slots=frags.encoded(), hours=frags.hours, weekend=frags.weekend())
    store.put_arrays("labels", moods=frags.moods)
    meta["fragments"] = len(frags.moods)
    store.put_json("meta", meta)
    return meta


def device_data_from_store(store: EncryptedStore, val_frac: float, seed: int) -> LocalData:
    """The device's rows from its store, split exactly as :func:`~fedmood.studies.mood.data.local.load_local_data`."""
    meta = store.get_json("meta")
    if meta.get("format") != FORMAT:
        raise StoreError(f"{store.path('meta')}: store format {meta.get('format')!r}, expected {FORMAT}")
    fragments = store.get_arrays("fragments")
    slots = fragments["slots"]
    moods = store.get_arrays("labels")["moods"].astype(np.float32)
    if len(slots) != len(moods) or len(moods) != meta["fragments"]:
        raise StoreError(
            f"{store.root}: {len(slots)} fragments, {len(moods)} labels, meta says {meta['fragments']}: "
            "the store is inconsistent (re-provision it or run refresh_fragments)"
        )
    user = int(meta["user"])
    train, val = split_indices(len(moods), val_frac, seed, user)
    return LocalData(
        user, moods, train, val, fragments=slots, hours=fragments["hours"], weekend=fragments["weekend"].astype(bool)
    )


def _states(store: EncryptedStore) -> list[tuple[str, int, str]]:
    out = []
    for name in store.names():
        m = _STATE_NAME.match(name)
        if m:
            out.append((m.group(1), int(m.group(2)), name))
    return out


def save_user_state(store: EncryptedStore, run_key: str, rnd: int, arrays: dict[str, np.ndarray]) -> None:
    """Keep the user's parameters after round ``rnd`` of run ``run_key``; drop older rounds and other runs."""
    store.put_arrays(f"{STATE_PREFIX}{run_key}.r{rnd}", **arrays)
    for key, r, name in _states(store):
        if key != run_key or r <= rnd - KEEP_ROUNDS:
            store.path(name).unlink(missing_ok=True)


def load_user_state(store: EncryptedStore, run_key: str, before_round: int) -> dict[str, np.ndarray] | None:
    """The user's parameters from the latest round of ``run_key`` before ``before_round`` (None: start fresh)."""
    rounds = [(r, name) for key, r, name in _states(store) if key == run_key and r < before_round]
    if not rounds:
        return None
    return store.get_arrays(max(rounds)[1])
