"""Per-series windows with a fixed memory cost.

Three rings per series, all in 2-D numpy arrays (row = series) so a batch touching any set of
series updates them with fancy indexing:

* raw: the last RAW readings at full resolution (ts, value, usable flag);
* mid: MID time bins (1 h for deformation = 30 days, 10 min for rain = 5 days), sum and count;
* day: DAY daily bins (sum and count), for long baselines and antecedent rain.

A bin slot is `bin_number % size` and remembers its bin number, so stale slots read as empty
without ever being swept. Memory per series is `bytes_per_series()` (about 20 KiB)."""
from __future__ import annotations

import numpy as np

RAW = 256
MID = 720
DAY = 180
DAY_S = 86400.0


class Windows:
    def __init__(self, capacity: int = 256):
        self.cap = 0
        self.raw_ts = np.zeros((0, RAW))
        self.raw_v = np.zeros((0, RAW))
        self.raw_ok = np.zeros((0, RAW), bool)
        self.count = np.zeros(0, np.int64)  # readings ever appended to raw
        self.last_ts = np.zeros(0)
        self.mid_w = np.zeros(0)
        self.mid_sum = np.zeros((0, MID))
        self.mid_n = np.zeros((0, MID), np.float32)
        self.mid_dt = np.zeros((0, MID), np.float32)  # sum of (ts - bin start): the bin's mean time
        self.mid_id = np.zeros((0, MID), np.int32)
        self.day_sum = np.zeros((0, DAY))
        self.day_n = np.zeros((0, DAY), np.float32)
        self.day_id = np.zeros((0, DAY), np.int32)
        self.ensure(capacity)

    @staticmethod
    def bytes_per_series() -> int:
        return RAW * (8 + 8 + 1) + 8 + 8 + 8 + MID * (8 + 4 + 4 + 4) + DAY * (8 + 4 + 4)

    def ensure(self, n: int) -> None:
        if n <= self.cap:
            return
        cap = max(n, 2 * self.cap, 64)

        def grow(a: np.ndarray, fill) -> np.ndarray:
            out = np.full((cap, *a.shape[1:]), fill, a.dtype)
            out[: len(a)] = a
            return out

        self.raw_ts, self.raw_v = grow(self.raw_ts, np.nan), grow(self.raw_v, np.nan)
        self.raw_ok = grow(self.raw_ok, False)
        self.count, self.last_ts = grow(self.count, 0), grow(self.last_ts, -np.inf)
        self.mid_w = grow(self.mid_w, 3600.0)
        self.mid_sum, self.mid_n, self.mid_id = grow(self.mid_sum, 0.0), grow(self.mid_n, 0), grow(self.mid_id, -1)
        self.mid_dt = grow(self.mid_dt, 0)
        self.day_sum, self.day_n, self.day_id = grow(self.day_sum, 0.0), grow(self.day_n, 0), grow(self.day_id, -1)
        self.cap = cap

    # --- writing ---------------------------------------------------------------------------

    def append_raw(self, sid: np.ndarray, ts: np.ndarray, v: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Append one reading to each of the (distinct) series; returns the ring positions."""
        pos = self.count[sid] % RAW
        self.raw_ts[sid, pos] = ts
        self.raw_v[sid, pos] = v
        self.raw_ok[sid, pos] = ok
        self.count[sid] += 1
        self.last_ts[sid] = ts
        return pos

    def add_bins(self, sid: np.ndarray, ts: np.ndarray, v: np.ndarray) -> None:
        """Add values to the mid and day bins (sums; counts for means)."""
        if len(sid) == 0:
            return
        w = self.mid_w[sid]
        b = np.floor(ts / w).astype(np.int64)
        _bin_add(self.mid_sum, self.mid_n, self.mid_id, sid, b, v, self.mid_dt, ts - b * w)
        _bin_add(self.day_sum, self.day_n, self.day_id, sid, np.floor(ts / DAY_S).astype(np.int64), v)

    # --- reading ---------------------------------------------------------------------------

    def raw_last(self, sid: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last k raw readings per series, oldest first: ts, value (NaN where unusable or
        absent) and whether the slot holds a reading at all."""
        back = np.arange(k - 1, -1, -1)
        cnt = self.count[sid]
        idx = (cnt[:, None] - 1 - back) % RAW
        present = back[None, :] < np.minimum(cnt, RAW)[:, None]
        rows = sid[:, None]
        ts = np.where(present, self.raw_ts[rows, idx], np.nan)
        v = np.where(present & self.raw_ok[rows, idx], self.raw_v[rows, idx], np.nan)
        return ts, v, present

    def bins(self, which: str, sid: np.ndarray, end_bin: np.ndarray, nb: int) -> tuple[np.ndarray, ...]:
        """Sum, count and mean time of the nb bins ending at end_bin (inclusive), oldest first;
        empty or overwritten bins count 0 (mean time NaN; day bins report their centre)."""
        ssum, scnt, sid_arr = (self.mid_sum, self.mid_n, self.mid_id) if which == "mid" else \
            (self.day_sum, self.day_n, self.day_id)
        size = ssum.shape[1]
        want = end_bin[:, None] - np.arange(nb - 1, -1, -1)[None, :]
        slot = want % size
        rows = sid[:, None]
        hit = sid_arr[rows, slot] == want
        cnt = np.where(hit, scnt[rows, slot], 0.0)
        if which == "mid":
            w = self.mid_w[sid][:, None]
            with np.errstate(invalid="ignore", divide="ignore"):
                t = want * w + np.where(hit, self.mid_dt[rows, slot], 0.0) / cnt
        else:
            t = (want + 0.5) * DAY_S
        t = np.where(cnt > 0, t, np.nan)
        return np.where(hit, ssum[rows, slot], 0.0), cnt, t

    def mid_bin(self, sid: np.ndarray, ts: np.ndarray) -> np.ndarray:
        return np.floor(ts / self.mid_w[sid]).astype(np.int64)


def _bin_add(ssum: np.ndarray, scnt: np.ndarray, sids: np.ndarray, sid: np.ndarray, b: np.ndarray,
             v: np.ndarray, sdt: np.ndarray | None = None, dt: np.ndarray | None = None) -> None:
    size = ssum.shape[1]
    flat = sid * size + b % size
    cur = sids.ravel()[flat].astype(np.int64)
    # a newer bin takes its slot over (clearing it); a value older than the slot's bin is too
    # old for this ring and is left out of it
    final = np.maximum(cur, b)
    order = np.lexsort((final, flat))
    fs = flat[order]
    start = np.r_[True, fs[1:] != fs[:-1]]
    end = np.r_[start[1:], True]
    grp = np.cumsum(start) - 1
    slot_final = np.empty(len(flat), np.int64)
    slot_final[order] = final[order][end][grp]
    reset = slot_final > cur
    if reset.any():
        rf = flat[reset]
        ssum.ravel()[rf] = 0.0
        scnt.ravel()[rf] = 0.0
        if sdt is not None:
            sdt.ravel()[rf] = 0.0
        sids.ravel()[rf] = slot_final[reset]
    keep = b == slot_final
    np.add.at(ssum.ravel(), flat[keep], v[keep])
    np.add.at(scnt.ravel(), flat[keep], 1.0)
    if sdt is not None:
        np.add.at(sdt.ravel(), flat[keep], dt[keep])
