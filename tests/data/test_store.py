"""The device's encrypted store: round trip, wrong key, tampering, key files, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fedmood.results as results
from fedmood.data.store import KEY_ENV, EncryptedStore, StoreError, create_key_file, load_key, new_key


@pytest.fixture
def store(tmp_path):
    return EncryptedStore(tmp_path / "device", load_key(create_key_file(tmp_path / "key")))


def test_round_trip_and_nothing_in_clear(store):
    store.put("logs", b"mood -1 at 09:00, walking")
    store.put_json("labels", {"hours": [0, 1, -1]})
    store.put_arrays("user-state", factors=np.arange(6.0).reshape(2, 3), bias=np.array([0.5]))
    assert store.get("logs") == b"mood -1 at 09:00, walking"
    assert store.get_json("labels") == {"hours": [0, 1, -1]}
    arrays = store.get_arrays("user-state")
    assert np.array_equal(arrays["factors"], np.arange(6.0).reshape(2, 3)) and arrays["bias"][0] == 0.5
    assert store.names() == ["labels", "logs", "user-state"] and "logs" in store
    assert b"walking" not in store.path("logs").read_bytes()  # encrypted at rest
    store.put("logs", b"second version")  # a rewrite replaces the record
    assert store.get("logs") == b"second version"


def test_wrong_key_tampering_and_swapped_records_fail_loudly(store, tmp_path):
    store.put("logs", b"secret")
    store.put("fragments", b"other")
    with pytest.raises(StoreError, match="wrong key, or the file was modified"):
        EncryptedStore(store.root, load_key(create_key_file(tmp_path / "other-key"))).get("logs")
    blob = bytearray(store.path("logs").read_bytes())
    blob[-1] ^= 1
    store.path("logs").write_bytes(bytes(blob))
    with pytest.raises(StoreError, match=r"logs\.fmstore: cannot decrypt"):
        store.get("logs")
    os.replace(store.path("fragments"), store.path("labels"))  # a record moved under another name
    with pytest.raises(StoreError, match="cannot decrypt"):
        store.get("labels")
    store.path("bad").write_bytes(b"plain text")
    with pytest.raises(StoreError, match="not a fedmood store record"):
        store.get("bad")
    with pytest.raises(StoreError, match="no record 'missing'"):
        store.get("missing")  # never an empty answer
    with pytest.raises(StoreError, match="record name"):
        store.put("../escape", b"x")


def test_key_from_file_or_environment(tmp_path, monkeypatch):
    key_file = create_key_file(tmp_path / "key")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(FileExistsError):
        create_key_file(key_file)  # an existing key is never overwritten
    key_file.chmod(0o644)
    with pytest.raises(StoreError, match="must be 0600"):
        load_key(key_file)
    monkeypatch.setenv(KEY_ENV, new_key().decode())
    store = EncryptedStore.open(tmp_path / "s")
    store.put("x", b"1")
    assert EncryptedStore.open(tmp_path / "s").get("x") == b"1"
    monkeypatch.setenv(KEY_ENV, "c2hvcnQ=")
    with pytest.raises(StoreError, match="32 bytes"):
        load_key()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(StoreError, match="no store key"):
        load_key()


def test_a_crash_mid_write_leaves_the_old_record_and_no_partial_file(store, monkeypatch):
    store.put("user-state", b"version 1")

    def crash(*_args, **_kwargs):
        raise OSError("power lost")

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        store.put("user-state", b"version 2")
    monkeypatch.undo()
    assert store.get("user-state") == b"version 1"
    assert sorted(p.name for p in store.root.iterdir()) == ["user-state.fmstore"]  # no temporary left
