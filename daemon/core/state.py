"""What the core remembers of each series between batches, as named columns (one row per
series): the detectors' slots, the series' level, quality state, the latest failure forecast
and the figures its reasons quote."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.slots import NSLOT
from .columns import Columns, column


@dataclass(eq=False)
class SeriesState(Columns):
    # per detector slot (model.slots.Slot): the level reached, the measured value and the
    # threshold it was compared with
    slot_level: np.ndarray = column(np.int8, 0, NSLOT)
    slot_value: np.ndarray = column(float, np.nan, NSLOT)
    slot_threshold: np.ndarray = column(float, np.nan, NSLOT)
    level: np.ndarray = column(np.int8, 0)  # the series' level: its highest slot
    level_ts: np.ndarray = column(float, np.nan)  # when it reached it (rain: the batch's peak)
    # data quality
    offset: np.ndarray = column(float, 0.0)  # removed reference jumps
    pending: np.ndarray = column(bool, False)  # last reading held back as suspect
    last_total: np.ndarray = column(float, np.nan)  # a rain counter's last value
    flat: np.ndarray = column(bool, False)
    noise: np.ndarray = column(float, np.nan)  # per-reading noise (robust), for rate significance
    # deformation: the rate as measured over the rate window (before the significance test)
    rate: np.ndarray = column(float, np.nan)  # units/day
    rate_se: np.ndarray = column(float, np.nan)  # its standard error from the series' noise
    # deformation trend
    v_ref: np.ndarray = column(float, np.nan)  # estimated constant-velocity rate (tangent angle)
    v_now: np.ndarray = column(float, np.nan)  # units/day over the velocity window
    v_angle: np.ndarray = column(float, np.nan)  # the constant-velocity rate the angle used
    accel: np.ndarray = column(float, np.nan)  # units/day²
    # the latest inverse-velocity forecast
    fc_failure_ts: np.ndarray = column(float, np.nan)
    fc_r2: np.ndarray = column(float, np.nan)
    fc_sigma_s: np.ndarray = column(float, np.nan)
    fc_velocity: np.ndarray = column(float, np.nan)  # units/day at the forecast
    fc_reported_ts: np.ndarray = column(float, np.nan)  # when a forecast was last reported
    strong: np.ndarray = column(bool, False)  # a good fit inside the orange horizon
    # a sparse series' last displacement fit, valid or not (detectors/cadence.py): the next
    # forecast counts only if this one agrees with it and has not lapsed
    fit_failure_ts: np.ndarray = column(float, np.nan)
    fit_halfwidth_s: np.ndarray = column(float, np.nan)
    fit_lapsed_ts: np.ndarray = column(float, np.nan)  # when a fit's failure time last passed unfulfilled
    # rainfall
    id_duration_h: np.ndarray = column(float, np.nan)  # the I-D duration exceeded most
