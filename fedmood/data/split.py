"""The one data-splitting helper: seeded per-user splits.

Splitting per user keeps each user's validation rows on their own device in the federated run, and
the centralised baseline uses exactly the same rows (the union of the users' splits).
:func:`split_indices` gives train/validation; :func:`split_train_valid_test` the 80/10/10 split
of the MetaMF data sets (test = ceil(n/10), valid = round((n - test)/9), train = the rest);
:func:`first_n` the first ``n`` rows of a seeded order (the personal-model study's "a device's
first n windows", the same rows for every model and nested as n grows).
"""

from __future__ import annotations

import numpy as np


def split_indices(n: int, val_frac: float, seed: int, user: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of ``n`` rows, ``round(val_frac * n)`` of them for validation.

    Deterministic in ``(seed, user)``; a user with at least 2 rows keeps at least one of each.
    """
    if not 0.0 <= val_frac < 1.0:
        raise ValueError(f"val_frac must be in [0, 1), got {val_frac}")
    perm = np.random.default_rng([seed, user, 0x5EED]).permutation(n)
    n_val = round(val_frac * n)
    if n >= 2 and val_frac > 0:
        n_val = min(max(n_val, 1), n - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_train_valid_test(n: int, seed: int, user: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices ``(train, valid, test)`` of ``n`` rows by the MetaMF rule, deterministic in ``(seed, user)``."""
    perm = np.random.default_rng([seed, user, 0x7E57]).permutation(n)
    n_test = -(-n // 10)
    n_valid = round((n - n_test) / 9)
    test, valid, train = perm[:n_test], perm[n_test : n_test + n_valid], perm[n_test + n_valid :]
    return np.sort(train), np.sort(valid), np.sort(test)


def first_n(n_rows: int, n: int, seed: int, user: int = 0) -> np.ndarray:
    """Indices of the first ``n`` of ``n_rows`` rows in an order seeded by ``(seed, user)``.

    The order does not depend on ``n``, so the first ``n`` rows are among the first ``m`` for
    ``n <= m``. Raises when fewer than ``n`` rows exist.
    """
    if not 0 <= n <= n_rows:
        raise ValueError(f"first_n: asked for {n} of {n_rows} rows")
    return np.random.default_rng([seed, user, 0xF125]).permutation(n_rows)[:n]
