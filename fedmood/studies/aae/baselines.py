"""The anonymisation study's baselines, as window -> window transforms (shape kept).

* FFT resampling (``scipy.signal.resample``) down to 10 or 5 Hz and back to the 50 Hz grid: only
  the low frequencies survive (the paper's "resample" rows).
* SSA (singular spectrum analysis, pyts's implementation): each channel of each window rebuilt from
  its first 1 or first 2 elementary components (the paper's "SSA" rows).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import resample

SAMPLE_RATE_HZ = 50.0


def resample_roundtrip(x: np.ndarray, rate_hz: float, sample_rate_hz: float = SAMPLE_RATE_HZ) -> np.ndarray:
    """Windows (N, channels, width) resampled to ``rate_hz`` and back to ``width`` samples."""
    width = x.shape[-1]
    low = max(1, round(width * rate_hz / sample_rate_hz))
    return resample(resample(x, low, axis=-1), width, axis=-1).astype(np.float32)


def ssa_reconstruct(x: np.ndarray, components: int, window_size: int = 16, chunk: int = 2048) -> np.ndarray:
    """Each channel of each window (N, channels, width) rebuilt from its first ``components`` SSA components."""
    from pyts.decomposition import SingularSpectrumAnalysis  # numba-compiled: imported when needed

    if not 1 <= components <= window_size:
        raise ValueError(f"SSA: components={components} must be between 1 and window_size={window_size}")
    n, c, width = x.shape
    ssa = SingularSpectrumAnalysis(window_size=window_size, groups=[list(range(components))])
    series = x.reshape(n * c, width).astype(np.float64)
    # pyts builds (series x groups x window x width) arrays: a few thousand series at a time
    out = np.concatenate([ssa.fit_transform(series[s : s + chunk]) for s in range(0, len(series), chunk)])
    return out.reshape(n, c, width).astype(np.float32)
