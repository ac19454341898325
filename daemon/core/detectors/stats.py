"""Row-wise robust statistics on 2-D arrays with NaN gaps (one row per series).

numpy's nanmedian falls back to slow paths on small rows; sorting once (NaN sorts last) and
indexing the middle of the valid part is exact and fast."""
from __future__ import annotations

import numpy as np

MAD_SCALE = 1.4826  # MAD to standard deviation for Gaussian noise


def row_count(mask: np.ndarray) -> np.ndarray:
    """True cells per row of a 2-D bool array. numpy's per-row reductions (count_nonzero, sum)
    pay a call per short row; a product with a ones vector counts all rows in one pass (in
    bytes, which hold counts up to 255)."""
    w = mask.shape[1]
    if w > 255:
        return np.count_nonzero(mask, axis=1)
    return (np.ascontiguousarray(mask).view(np.uint8) @ np.ones(w, np.uint8)).astype(np.int64)


def row_reduce(ufunc: np.ufunc, a: np.ndarray) -> np.ndarray:
    """ufunc.reduce along each row of a 2-D array, down the columns of a transposed copy: along
    short rows numpy pays an inner loop per row. For order-free reductions (max, min, any,
    integer counts): a float sum would round differently."""
    return ufunc.reduce(np.ascontiguousarray(a.T), axis=0)


def rowmedian(a: np.ndarray) -> np.ndarray:
    """Median of each row, ignoring NaN; NaN for rows without any value."""
    w = a.shape[1]
    if w == 0:
        return np.full(a.shape[0], np.nan)
    # a full sort of short rows beats np.partition, whose per-row overhead dominates here;
    # NaN sorts last
    s, nan = np.sort(a, axis=1), np.isnan(a)
    if not nan.any():  # no gaps: the middle columns
        return 0.5 * (s[:, (w - 1) // 2] + s[:, w // 2])
    c = w - row_count(nan)
    lo = np.maximum((c - 1) // 2, 0)
    hi = np.minimum(c // 2, w - 1)
    rows = np.arange(s.shape[0])
    m = 0.5 * (s[rows, lo] + s[rows, hi])
    m[c == 0] = np.nan
    return m


def median_and_mad(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rowmedian(a) and rowmedian(|a - median|). (Two sorts: numpy's vectorised sort of short
    rows beats reading the MAD off the first sort a column at a time.)"""
    med = rowmedian(a)
    return med, rowmedian(np.abs(a - med[:, None]))


def block_means(t: np.ndarray, v: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of t and v over `blocks` equal column blocks (the trailing columns form the last
    block); a block without values is NaN. Cuts Theil-Sen's pair count without losing robustness
    to single bad bins, which the block mean dilutes and the pairwise median then rejects."""
    n, w = v.shape
    blocks = max(1, min(blocks, w))
    size = w // blocks
    cut = w - size * blocks
    tv = t[:, cut:].reshape(n, blocks, size)
    vv = v[:, cut:].reshape(n, blocks, size)
    ok = ~np.isnan(vv)
    cnt = ok.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        bt = np.where(ok, tv, 0.0).sum(axis=2) / cnt
        bv = np.where(ok, vv, 0.0).sum(axis=2) / cnt
    return bt, bv


_PAIRS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def theil_sen(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Theil-Sen slope (median of pairwise slopes) per row, and the number of valid points.
    Rows are short (block means): the pair count stays small."""
    w = v.shape[1]
    if w not in _PAIRS:
        _PAIRS[w] = np.triu_indices(w, 1)
    i, j = _PAIRS[w]
    dt = t[:, j] - t[:, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (v[:, j] - v[:, i]) / dt
    s[~(dt > 0)] = np.nan
    return rowmedian(s), v.shape[1] - row_count(np.isnan(v))


def linfit(t: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Weighted least squares y = a + b·t per row ignoring NaN: a, b, (weighted) r², n, and
    the standard errors and covariance of a and b (for the uncertainty of a root)."""
    ok = ~(np.isnan(t) | np.isnan(y))
    if w is None:
        w = np.ones_like(y)
    w = np.where(ok & ~np.isnan(w), w, 0.0)
    n = ok.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        sw = w.sum(axis=1)
        tm = (w * np.where(ok, t, 0.0)).sum(axis=1) / sw
        ym = (w * np.where(ok, y, 0.0)).sum(axis=1) / sw
        dt = np.where(ok, t - tm[:, None], 0.0)
        dy = np.where(ok, y - ym[:, None], 0.0)
        sxx = (w * dt * dt).sum(axis=1)
        sxy = (w * dt * dy).sum(axis=1)
        syy = (w * dy * dy).sum(axis=1)
        b = sxy / sxx
        a = ym - b * tm
        sse = np.clip(syy - b * sxy, 0.0, None)
        r2 = 1.0 - sse / syy
        # residual variance per unit weight, with the effective number of points
        s2 = sse / sw * n / (n - 2)
        var_b = s2 / sxx * sw / n
        var_a = var_b * (sxx / sw + tm * tm)
        cov_ab = -tm * var_b
    return a, b, r2, n, var_a, var_b, cov_ab


def level_of(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Level 0..4 of each value against its own [blue, yellow, orange, red] thresholds, the last
    axis of `table` (NaN thresholds are never reached; a NaN value is level 0)."""
    out = np.zeros(values.shape, np.int8)
    # the highest level reached, so a level left out (NaN) between two others does not shift
    # them; a level at a time: numpy's per-row max over four columns costs a call per row
    with np.errstate(invalid="ignore"):
        for k in range(table.shape[-1]):
            out[values >= table[..., k]] = k + 1
    return out


def threshold_at(level: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The threshold a row's level reached (or the next one up when the level is 0). Levels
    [n, k] against tables [n, k, 4] give [n, k]."""
    idx = np.minimum(np.maximum(level.astype(np.intp) - 1, 0), 3)
    if level.ndim == 1:
        return table[np.arange(len(level)), idx]
    return np.take_along_axis(table, idx[..., None], axis=-1)[..., 0]
