"""The demo city's meter readings: a year of monthly billing reads for every customer of both networks,
and hourly interval reads (smart meters) of a sample of them for four weeks, one in each season.

Vectorised and seeded (its own random stream), so a load stays fast and every load reads the same.
Volumes follow the customer's category and households, a seasonal curve (water peaks in summer, gas
in winter) and a daily curve per category (a household's morning and evening peaks, a shop's opening
hours, a school's weekday). All invented.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.democity.common import random_stream

READING_YEAR = 2025
USAGE_STREAM = 40
SAMPLE_EVERY = 40  # one customer in SAMPLE_EVERY has a smart meter (at least SAMPLE_MIN per network)
SAMPLE_MIN = 5
# the Mondays the four sample weeks of hourly reads start on (winter, spring, summer, autumn)
SAMPLE_WEEKS = ("2025-01-13", "2025-04-14", "2025-07-14", "2025-10-13")
ZONE = "Asia/Shanghai"

# monthly volume per customer (per household for homes): water m³, gas m³
MONTHLY = {
    "water": {"residential": (7.0, 11.0), "commercial": (60, 400), "industrial": (300, 3000), "hospital": (1500, 4000),
              "school": (400, 1200), "government": (100, 400), "fire": (20, 60), "other": (10, 50)},
    "gas": {"residential": (8.0, 14.0), "commercial": (100, 800), "industrial": (500, 5000), "hospital": (500, 1500),
            "school": (50, 200), "government": (20, 100), "fire": (5, 20), "other": (5, 30)},
}
PER_HOUSEHOLD = ("residential",)


def _curve(points: dict[int, float]) -> np.ndarray:
    """24 hourly weights from a few anchor hours (linear in between, wrapping at midnight)."""
    hours = sorted(points)
    xs = np.array(hours + [hours[0] + 24], dtype=float)
    ys = np.array([points[h] for h in hours] + [points[hours[0]]])
    return np.interp(np.arange(24), xs, ys, period=24)


DAILY = {
    "residential": _curve({0: 0.3, 4: 0.2, 6: 0.9, 7: 1.8, 8: 1.4, 11: 0.9, 12: 1.2, 14: 0.7, 18: 1.3, 20: 1.9,
                           22: 1.0}),
    "commercial": _curve({0: 0.1, 7: 0.2, 9: 0.9, 12: 1.6, 15: 1.2, 18: 1.7, 21: 1.0, 23: 0.2}),
    "industrial": _curve({0: 0.4, 6: 0.5, 8: 1.5, 12: 1.3, 13: 1.0, 14: 1.5, 18: 1.2, 20: 0.5}),
    "hospital": _curve({0: 0.7, 5: 0.6, 8: 1.3, 11: 1.4, 14: 1.2, 18: 1.1, 21: 0.9}),
    "school": _curve({0: 0.05, 6: 0.1, 7: 0.8, 9: 1.2, 12: 1.8, 14: 1.1, 17: 0.6, 19: 0.1}),
    "government": _curve({0: 0.05, 7: 0.2, 9: 1.4, 12: 1.0, 14: 1.4, 17: 0.8, 19: 0.1}),
}
WEEKDAY_ONLY = ("school", "government")


def _seasonal(utility: str, month: np.ndarray) -> np.ndarray:
    """Water peaks in July–August, gas in January (heating water, hot pot)."""
    if utility == "gas":
        return 1.0 + 0.35 * np.cos(2 * np.pi * (month - 1) / 12)
    return 1.0 + 0.15 * np.cos(2 * np.pi * (month - 7.5) / 12)


def readings_table(networks: pd.DataFrame, customers: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Readings keyed by the generator's ``network_id`` and ``account_no``: kind, read_at (aware),
    consumption and register_value (billing reads only)."""
    rng = random_stream(seed, USAGE_STREAM)
    utility_of = dict(zip(networks["id"], networks["utility"], strict=True))
    frames = []
    for net_id, group in customers.groupby("network_id", sort=True):
        utility = utility_of[net_id]
        n = len(group)
        category = group["category"].to_numpy()
        low = np.array([MONTHLY[utility].get(c, (5, 30))[0] for c in category], dtype=float)
        high = np.array([MONTHLY[utility].get(c, (5, 30))[1] for c in category], dtype=float)
        base = rng.uniform(low, high)
        homes = np.isin(category, PER_HOUSEHOLD)
        base[homes] *= group["households"].to_numpy()[homes]
        # monthly billing reads: the last day of each month, in the meter reader's working hours
        month = np.arange(1, 13)
        ends = pd.date_range(f"{READING_YEAR}-01-31", periods=12, freq="ME")
        minutes = rng.integers(9 * 60, 18 * 60, size=(n, 12))
        read_at = (ends.values[None, :] + minutes.astype("timedelta64[m]"))
        days = ends.day.to_numpy()[None, :] / 30.4
        volume = base[:, None] * _seasonal(utility, month)[None, :] * days * rng.lognormal(0, 0.12, (n, 12))
        volume = np.round(volume, 3)
        start = np.round(rng.uniform(0, 5000, n), 3)
        register = np.round(start[:, None] + np.cumsum(volume, axis=1), 3)
        frames.append(pd.DataFrame({
            "network_id": net_id, "account_no": np.repeat(group["account_no"].to_numpy(), 12), "kind": "billing",
            "read_at": pd.DatetimeIndex(read_at.ravel()).tz_localize(ZONE).tz_convert("UTC"), "consumption": volume.ravel(),
            "register_value": register.ravel()}))
        # hourly interval reads of a sample (every SAMPLE_EVERY-th account), four weeks a year
        sample = np.arange(0, n, SAMPLE_EVERY) if n >= SAMPLE_MIN * SAMPLE_EVERY else np.arange(min(n, SAMPLE_MIN))
        hours = pd.DatetimeIndex(np.concatenate([pd.date_range(w, periods=7 * 24, freq="h").values
                                                 for w in SAMPLE_WEEKS]))
        hour_of_day = hours.hour.to_numpy()
        weekend = hours.dayofweek.to_numpy() >= 5
        cats = category[sample]
        weights = np.stack([DAILY.get(c, DAILY["hospital"])[hour_of_day] for c in cats])
        weights[np.isin(cats, WEEKDAY_ONLY)[:, None] & weekend[None, :]] *= 0.15
        per_hour = base[sample] / (30.4 * 24)
        seasonal = _seasonal(utility, hours.month.to_numpy())
        volume = np.round(per_hour[:, None] * weights * seasonal[None, :] *
                          rng.lognormal(0, 0.2, (len(sample), len(hours))), 3)
        ending = (hours + pd.Timedelta(hours=1)).tz_localize(ZONE)  # an interval read is stamped at its end
        frames.append(pd.DataFrame({
            "network_id": net_id, "account_no": np.repeat(group["account_no"].to_numpy()[sample], len(hours)),
            "kind": "interval", "read_at": pd.DatetimeIndex(np.tile(ending.tz_convert("UTC").values, len(sample)),
                                                            tz="UTC"),
            "consumption": volume.ravel(),
            "register_value": np.nan}))
    return pd.concat(frames, ignore_index=True)
