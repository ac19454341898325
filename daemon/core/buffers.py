"""Per-series windows with a fixed memory cost.

Three rings per series, all in 2-D numpy arrays (row = series) so a batch touching any set of
series updates them with fancy indexing:

* raw: the last RAW readings at full resolution (ts, value, usable flag);
* mid: MID time bins (1 h for deformation = 30 days, 10 min for rain = 5 days), sum and count;
* day: DAY daily bins (sum and count), for long baselines and antecedent rain.

A bin slot is `bin_number % size` and remembers its bin number, so stale slots read as empty
without ever being swept. Memory per series is `bytes_per_row()` (about 20 KiB)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .columns import Columns, column

RAW = 256
MID = 720
DAY = 180
DAY_S = 86400.0
EMPTY = np.iinfo(np.int32).min  # the bin number of a slot never written (its sums are zero)


def starts_of(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins (a grouped by series: each group's first)."""
    out = np.empty(len(a), bool)
    if len(a):
        out[0] = True
        np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def ends_of(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values ends."""
    out = np.empty(len(a), bool)
    if len(a):
        out[-1] = True
        np.not_equal(a[1:], a[:-1], out=out[:-1])
    return out


def series_order(sid: np.ndarray) -> np.ndarray:
    """A stable order grouping small non-negative ids: radix passes over 16-bit digits, which
    numpy sorts by counting (ten times faster than its comparison sorts on int64)."""
    order = np.argsort((sid & 0xFFFF).astype(np.uint16), kind="stable")
    shift = 16
    while len(sid) and int(sid.max()) >> shift:
        digit = ((sid[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
    return order


def by_series_then_time(sid: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """The order that sorts readings by (series, time), ties in arrival order; None when they
    are in that order already. Batches mostly arrive in time order, where a stable grouping
    by series is the same order and far cheaper than a two-key sort."""
    if len(sid) < 2:
        return None
    if not (t[1:] >= t[:-1]).all():
        return np.lexsort((t, sid))
    if (sid[1:] >= sid[:-1]).all():
        return None
    return series_order(sid)


_COUNTDOWNS: dict[int, np.ndarray] = {}


def _countdown(n: int) -> np.ndarray:
    """n-1, ..., 1, 0: how many bins back each column of an n-bin window is."""
    c = _COUNTDOWNS.get(n)
    if c is None:
        c = _COUNTDOWNS[n] = np.arange(n - 1, -1, -1)
    return c


def block_sums(a: np.ndarray, size: int) -> np.ndarray:
    """Sums of consecutive blocks of `size` columns of each row ([n, blocks·size] -> [n, blocks]).

    The same sums, bit for bit, as a.reshape(n, blocks, size).sum(axis=2) (numpy adds fewer
    than 8 values in order, and 8 or more in eight interleaved partial sums), but one
    vectorised add per column of a block instead of a reduction call per short block."""
    v = a.reshape(-1, size)
    if size > 16:
        return v.sum(axis=1).reshape(len(a), -1)
    if size < 8:
        s = v[:, 0].copy()
        for i in range(1, size):
            s += v[:, i]
    else:
        r = [v[:, i] + v[:, i + 8] if i + 8 < size and size >= 16 else v[:, i] for i in range(8)]
        s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for i in range(16 if size >= 16 else 8, size):
            s += v[:, i]
    return s.reshape(len(a), -1)


def windows_of(a: np.ndarray, nb: int) -> np.ndarray:
    """A [rows, cols - nb + 1, nb] view of a C-contiguous 2-D array: [r, j] is a[r, j:j + nb].
    (Made by the ndarray constructor: as_strided costs several times more per call.)"""
    s0, s1 = a.strides
    return np.ndarray((a.shape[0], a.shape[1] - nb + 1, nb), a.dtype, a, 0, (s0, s1, s1))


def ring_windows(arrays: tuple[np.ndarray, ...], sid: np.ndarray, end: np.ndarray, nb: int) -> list[np.ndarray]:
    """For each [rows, size] ring array, rows `sid`: the nb slots up to slot `end % size`, oldest
    first. Copied a row's run at a time (a window is one slice of its ring, or two where it wraps
    round the end): several times faster than computing and gathering every cell's index."""
    size = arrays[0].shape[1]
    if nb > size:  # a window longer than its ring reads some slots twice: the general gather
        flat = (end[:, None] - _countdown(nb)) % size
        flat += (sid * size)[:, None]
        return [a.ravel().take(flat) for a in arrays]
    start = end % size - (nb - 1)
    wrap = start < 0
    if not wrap.any():
        return [windows_of(a, nb)[sid, start] for a in arrays]
    whole, wrapped = np.flatnonzero(~wrap), np.flatnonzero(wrap)
    sw = sid[wrapped]
    out = []
    for a in arrays:
        o = np.empty((len(sid), nb), a.dtype)
        o[whole] = windows_of(a, nb)[sid[whole], start[whole]]
        # the ring's tail then its head, side by side: the wrapped window is one slice of that
        ext = np.concatenate([a[sw, size - nb:], a[sw, :nb]], axis=1)
        o[wrapped] = windows_of(ext, nb)[np.arange(len(sw)), start[wrapped] + nb]
        out.append(o)
    return out


@dataclass(eq=False)
class Windows(Columns):
    raw_ts: np.ndarray = column(float, np.nan, RAW)
    raw_v: np.ndarray = column(float, np.nan, RAW)
    raw_ok: np.ndarray = column(bool, False, RAW)
    count: np.ndarray = column(np.int64, 0)  # readings ever appended to raw
    last_ts: np.ndarray = column(float, -np.inf)
    last_v: np.ndarray = column(float, np.nan)  # latest usable value
    prev_raw: np.ndarray = column(float, np.nan)  # latest raw value, usable or not
    run_start: np.ndarray = column(float, np.nan)  # since when the raw value has not changed
    run_n: np.ndarray = column(np.int64, 0)
    mid_w: np.ndarray = column(float, 3600.0)  # the series' mid bin width (s)
    mid_sum: np.ndarray = column(float, 0.0, MID)
    mid_n: np.ndarray = column(np.float32, 0, MID)
    mid_dt: np.ndarray = column(np.float32, 0, MID)  # sum of (ts - bin start): the bin's mean time
    mid_id: np.ndarray = column(np.int32, EMPTY, MID)
    day_sum: np.ndarray = column(float, 0.0, DAY)
    day_n: np.ndarray = column(np.float32, 0, DAY)
    day_id: np.ndarray = column(np.int32, EMPTY, DAY)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ensure(256)

    # --- writing ---------------------------------------------------------------------------

    def append(self, sid: np.ndarray, t: np.ndarray, v: np.ndarray, ok: np.ndarray, starts: np.ndarray) -> None:
        """Append readings grouped by series (each group in time order; `starts` marks group
        starts) to the raw rings, and keep the latest usable value and the flat-line run."""
        idx = np.arange(len(sid))
        head = np.flatnonzero(starts)
        first = np.maximum.accumulate(np.where(starts, idx, 0))
        rank = idx - first
        ends = ends_of(sid)
        n_new = rank[ends] + 1
        last = sid[ends]
        if n_new.max() > RAW:  # only the last RAW of a long run fit the ring
            size = np.zeros(len(sid), np.int64)
            size[head] = n_new
            keep = rank >= size[first] - RAW
            s, rank_k, t_k, v_k, ok_k = sid[keep], rank[keep], t[keep], v[keep], ok[keep]
        else:
            s, rank_k, t_k, v_k, ok_k = sid, rank, t, v, ok
        # one flat index serves the three rings (1-D takes and puts beat 2-D fancy indexing)
        cell = (self.count[s] + rank_k) % RAW
        cell += s * RAW
        self.raw_ts.ravel()[cell] = t_k
        self.raw_v.ravel()[cell] = v_k
        self.raw_ok.ravel()[cell] = ok_k
        self.count[last] += n_new
        self.last_ts[last] = t[ends]
        k = np.flatnonzero(ok)
        if len(k):
            k_end = k[ends_of(sid[k])]
            self.last_v[sid[k_end]] = v[k_end]
        # flat-line: when the raw value last changed, and how many readings since (only each
        # series' last run matters: it is judged at the end of the batch)
        prev = np.empty(len(v))
        prev[1:] = v[:-1]
        prev[head] = self.prev_raw[sid[head]]
        changed = v != prev
        src = np.maximum.accumulate(np.where(changed | starts, idx, 0))[ends]
        inherit = starts[src] & ~changed[src]
        self.run_start[last] = np.where(inherit, self.run_start[last], t[src])
        self.run_n[last] = np.where(inherit, self.run_n[last], 0) + (idx[ends] - src) + 1
        self.prev_raw[last] = v[ends]

    def add_bins(self, sid: np.ndarray, ts: np.ndarray, v: np.ndarray) -> None:
        """Add values to the mid and day bins (sums; counts for means)."""
        if len(sid) == 0:
            return
        starts = starts_of(sid)
        heads = np.sort(sid[starts])
        if (heads[1:] == heads[:-1]).any():  # group by series, each series' values in their order
            order = series_order(sid)
            sid, ts, v = sid[order], ts[order], v[order]
            starts = starts_of(sid)
        w = self.mid_w[sid]
        b = np.floor(ts / w).astype(np.int64)
        _bin_add(self.mid_sum, self.mid_n, self.mid_id, sid, b, v, starts, self.mid_dt, ts - b * w)
        _bin_add(self.day_sum, self.day_n, self.day_id, sid, np.floor(ts / DAY_S).astype(np.int64), v, starts)

    # --- reading ---------------------------------------------------------------------------

    def raw_last(self, sid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last k raw readings per series, oldest first: ts, value (NaN where unusable or
        absent) and whether the slot holds a reading at all."""
        back = _countdown(k)
        cnt = self.count[sid]
        ts, v, ok = ring_windows((self.raw_ts, self.raw_v, self.raw_ok), sid, cnt - 1, k)
        present = back[None, :] < np.minimum(cnt, RAW)[:, None]
        ts = np.where(present, ts, np.nan)
        v = np.where(present & ok, v, np.nan)
        return ts, v, present

    def bins(self, which: str, sid: np.ndarray, end_bin: np.ndarray, nb: int,
             times: bool = True) -> tuple[np.ndarray, ...]:
        """Sum, count and mean time of the nb bins ending at end_bin (inclusive), oldest first;
        empty or overwritten bins count 0 (mean time NaN; day bins report their centre)."""
        ssum, scnt, sid_arr = (self.mid_sum, self.mid_n, self.mid_id) if which == "mid" else \
            (self.day_sum, self.day_n, self.day_id)
        want = end_bin[:, None] - _countdown(nb)
        arrays = (sid_arr, scnt, ssum, self.mid_dt) if times and which == "mid" else (sid_arr, scnt, ssum)
        got = ring_windows(arrays, sid, end_bin, nb)
        hit = got[0] == want
        cnt = np.where(hit, got[1], 0.0)
        total = np.where(hit, got[2], 0.0)
        if not times:
            return total, cnt, None
        if which == "mid":
            w = self.mid_w[sid][:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                t = want * w + got[3] / cnt
        else:
            t = (want + 0.5) * DAY_S
        t = np.where(cnt > 0, t, np.nan)
        return total, cnt, t

    def mid_blocks(self, sid: np.ndarray, nbins: int, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last nbins mid bins (ending at each series' latest reading) aggregated into
        `blocks` equal blocks: mean time, mean value and reading count per block (NaN where
        empty). Detectors of rates and velocities need no more than this, and it keeps every
        array they touch small. nbins is rounded up to a multiple of blocks."""
        size = -(-nbins // blocks)
        nb = size * blocks
        ring = self.mid_sum.shape[1]
        end = self.mid_bin(sid, self.last_ts[sid])
        back = _countdown(nb)
        ids, n, tot, dt = ring_windows((self.mid_id, self.mid_n, self.mid_sum, self.mid_dt), sid, end, nb)
        # a slot holds a bin number ≡ its slot (mod ring) and never newer than the series' latest:
        # the wanted one exactly when it is less than a ring old. Only a stale slot (an older bin)
        # must be masked: an empty one holds zeros
        lim = end - ring
        lim = (lim.astype(np.int32) if len(lim) and EMPTY < lim.min() and lim.max() < 2**31 else lim)[:, None]
        stale = (ids <= lim) & (ids != EMPTY)
        if not stale.any():  # the usual case: every slot of every window is the wanted bin or empty
            n, dt = n.astype(np.float64), dt.astype(np.float64)
        else:
            n, tot, dt = np.where(stale, 0.0, n), np.where(stale, 0.0, tot), np.where(stale, 0.0, dt)
        cnt = (n.reshape(-1, size) @ np.ones(size, n.dtype)).reshape(len(sid), blocks)  # whole counts: exact
        tot = block_sums(tot, size)
        # times relative to the latest bin keep the sums small; added back per block
        w = self.mid_w[sid][:, None]
        # (one bin width for all rows, the usual case: the offsets are one row, not a matrix)
        offsets = -back * w if len(w) == 0 or (w != w[0]).any() else -back * w[0, 0]
        rel = dt + n * offsets
        tsum = block_sums(rel, size) + cnt * (end[:, None] * w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return tsum / cnt, tot / cnt, cnt

    def mid_bin(self, sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return np.floor(ts / self.mid_w[sid]).astype(np.int64)


def _bin_add(ssum: np.ndarray, scnt: np.ndarray, sids: np.ndarray, sid: np.ndarray, b: np.ndarray,
             v: np.ndarray, starts: np.ndarray, sdt: np.ndarray | None = None, dt: np.ndarray | None = None) -> None:
    """sid grouped by series (`starts` marks each group's first value)."""
    size = ssum.shape[1]
    flat = sid * size + b % size
    # per slot: the newest bin number wins the slot; group the slots, then sum runs with reduceat.
    # Values come grouped by series in time order: when no series' bins span the whole ring,
    # each slot's values are already one run with its bins ascending (no sort needed)
    if ((b[1:] >= b[:-1]) | starts[1:]).all() and (b[np.append(starts[1:], True)] - b[starts]).max() < size:
        fs, bs, vs, dts = flat, b, v, dt
    else:
        order = np.lexsort((b, flat))
        fs, bs, vs = flat[order], b[order], v[order]
        dts = dt[order] if dt is not None else None
    start = starts_of(fs)
    end = ends_of(fs)
    grp = np.cumsum(start) - 1
    newest = bs[end]
    slot = fs[end]
    cur = sids.ravel()[slot].astype(np.int64)
    fin = np.maximum(cur, newest)
    reset = fin > cur  # a newer bin takes the slot over: its sums restart from zero
    # a value older than its slot's bin is too old for this ring and stays out of it
    keep = bs == fin[grp]
    if keep.all():  # the usual case: every value is of its slot's newest bin, every slot is added to
        tgt, heads, n_kept, fresh = slot, np.flatnonzero(start), len(fs), reset
    else:  # (a slot taken over keeps its newest values, so it is among the kept slots)
        ks = np.flatnonzero(keep)
        runs = starts_of(fs[ks])
        run_heads = ks[runs]
        tgt, heads, n_kept, fresh = fs[run_heads], np.flatnonzero(runs), len(ks), reset[grp[run_heads]]
        vs = vs[ks]
        dts = dts[ks] if dts is not None else None
    sids.ravel()[slot] = fin
    if not len(tgt):
        return
    _add_at(ssum, tgt, np.add.reduceat(vs, heads), fresh)
    _add_at(scnt, tgt, np.diff(np.append(heads, n_kept)).astype(np.float32), fresh)
    if sdt is not None:
        _add_at(sdt, tgt, np.add.reduceat(dts, heads).astype(np.float32), fresh)


def _add_at(a: np.ndarray, cells: np.ndarray, add: np.ndarray, fresh: np.ndarray) -> None:
    """a.flat[cells] += add (distinct cells), the `fresh` cells starting from zero."""
    flat = a.ravel()
    flat[cells] = np.where(fresh, 0, flat[cells]) + add
