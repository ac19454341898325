"""State kept as named, typed numpy columns: one row per series (or per site), grown by
doubling when rows are added, never per reading.

A holder declares each column once, with its dtype, the value new rows start with and any
further axes (`column(float, np.nan, 4)` is an [n, 4] column); readers name the column
(`state.v_now[sid]`), never a position in a shared matrix."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


def grown(a: np.ndarray, cap: int, fill: Any) -> np.ndarray:
    """`a` with its first axis grown to cap rows, the new rows set to fill."""
    out = np.full((cap, *a.shape[1:]), fill, a.dtype)
    out[: len(a)] = a
    return out


def column(dtype: Any, fill: Any, *shape: int) -> Any:
    """A declared column of a `Columns` holder: rows of `shape`, new rows set to `fill`."""
    return field(default_factory=lambda: np.zeros((0, *shape), dtype), metadata={"fill": fill})


@dataclass(eq=False)
class Columns:
    """Base of the holders: every field declared with `column()` grows together."""

    def __post_init__(self) -> None:
        self._cols = tuple(f for f in fields(self) if "fill" in f.metadata)

    @property
    def rows(self) -> int:
        """Rows allocated (at least the rows in use)."""
        return len(getattr(self, self._cols[0].name))

    def ensure(self, n: int, minimum: int = 64) -> None:
        """At least n rows; grows by doubling."""
        if n <= self.rows:
            return
        cap = max(n, 2 * self.rows, minimum)
        for f in self._cols:
            setattr(self, f.name, grown(getattr(self, f.name), cap, f.metadata["fill"]))

    def column_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self._cols)

    def bytes_per_row(self) -> int:
        return sum(getattr(self, f.name).itemsize * int(np.prod(getattr(self, f.name).shape[1:])) for f in self._cols)
