"""A device's local store, encrypted at rest (AES-256-GCM from ``cryptography``).

Each record (a user's logs, fragments, labels, model state, ...) is one file
``<root>/<name>.fmstore``: a magic header, a fresh 12-byte nonce and the AES-GCM ciphertext, with
the header and the record's name as associated data (a file moved to another record's name fails
to decrypt, as does any flipped byte). Files are written atomically (temporary file + rename), so a
crash leaves the previous record, never a partial one. The key (32 bytes, URL-safe base64) comes
from the environment variable ``FEDMOOD_STORE_KEY`` or from a key file readable by its owner only
(mode 0600; :func:`create_key_file` writes one). A wrong key or a modified file raises
:class:`StoreError` naming the file; a missing record raises it too: the store never answers empty.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedmood.results import atomic_write_bytes

MAGIC = b"FMSTORE1"
SUFFIX = ".fmstore"
KEY_ENV = "FEDMOOD_STORE_KEY"
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class StoreError(RuntimeError):
    """The store cannot give what was asked: wrong key, modified file, missing record, bad key file."""


def new_key() -> bytes:
    """A fresh random 256-bit key, URL-safe base64 encoded (what the key file and variable hold)."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256))


def _decode_key(encoded: bytes | str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded.strip() if isinstance(encoded, bytes) else encoded.strip().encode())
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{where}: not a base64 key ({exc})") from exc
    if len(key) != 32:
        raise StoreError(f"{where}: the key must be 32 bytes (256 bits), got {len(key)}")
    return key


def create_key_file(path: str | Path) -> Path:
    """Write a new key to ``path`` with mode 0600 (refuses to overwrite an existing key)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(new_key())
    return path


def load_key(key_file: str | Path | None = None, env: str = KEY_ENV) -> bytes:
    """The store key from ``key_file`` (owner-only permissions required) or else the variable ``env``."""
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise StoreError(f"{path}: no such key file (create one with fedmood.data.store.create_key_file)")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise StoreError(f"{path}: key file permissions are {mode:04o}; they must be 0600 (chmod 600 {path})")
        return _decode_key(path.read_bytes(), str(path))
    if env in os.environ:
        return _decode_key(os.environ[env], f"${env}")
    raise StoreError(f"no store key: pass a key file or set ${env}")


class EncryptedStore:
    """Named records of bytes (and JSON, arrays) encrypted at rest under one key."""

    def __init__(self, root: str | Path, key: bytes) -> None:
        if len(key) != 32:
            raise StoreError(f"the store key must be 32 bytes, got {len(key)}")
        self.root = Path(root)
        self._aead = AESGCM(key)

    @classmethod
    def open(cls, root: str | Path, key_file: str | Path | None = None, env: str = KEY_ENV) -> EncryptedStore:
        """The store at ``root`` with the key of :func:`load_key`."""
        return cls(root, load_key(key_file, env))

    def path(self, name: str) -> Path:
        if not NAME.match(name):
            raise StoreError(f"record name {name!r}: use letters, digits, '_', '-' and '.' only")
        return self.root / f"{name}{SUFFIX}"

    def names(self) -> list[str]:
        """The records present."""
        return sorted(p.name[: -len(SUFFIX)] for p in self.root.glob(f"*{SUFFIX}")) if self.root.is_dir() else []

    def __contains__(self, name: str) -> bool:
        return self.path(name).is_file()

    def put(self, name: str, data: bytes) -> Path:
        """Encrypt ``data`` and write it atomically as record ``name``."""
        nonce = os.urandom(12)
        blob = MAGIC + nonce + self._aead.encrypt(nonce, bytes(data), MAGIC + name.encode())
        return atomic_write_bytes(self.path(name), blob)

    def get(self, name: str) -> bytes:
        """The decrypted bytes of record ``name``; :class:`StoreError` if missing, modified or under another key."""
        path = self.path(name)
        if not path.is_file():
            raise StoreError(f"{path}: no record {name!r} in the store at {self.root}")
        blob = path.read_bytes()
        if len(blob) < len(MAGIC) + 12 + 16 or not blob.startswith(MAGIC):
            raise StoreError(f"{path}: not a fedmood store record (bad header or truncated)")
        nonce, ciphertext = blob[len(MAGIC) : len(MAGIC) + 12], blob[len(MAGIC) + 12 :]
        try:
            return self._aead.decrypt(nonce, ciphertext, MAGIC + name.encode())
        except InvalidTag as exc:
            raise StoreError(f"{path}: cannot decrypt: wrong key, or the file was modified") from exc

    def put_json(self, name: str, obj: object) -> Path:
        return self.put(name, json.dumps(obj).encode("utf-8"))

    def get_json(self, name: str) -> object:
        return json.loads(self.get(name).decode("utf-8"))

    def put_arrays(self, name: str, **arrays: np.ndarray) -> Path:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return self.put(name, buf.getvalue())

    def get_arrays(self, name: str) -> dict[str, np.ndarray]:
        with np.load(io.BytesIO(self.get(name)), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
