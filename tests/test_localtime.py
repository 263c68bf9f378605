"""gis.localtime: what a person reads is the city's local time to the minute, legal dates are dates.

Oracle: pandas' own time-zone conversion (Timestamp.tz_convert), not the module's arithmetic.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from gis.errors import ConfigError
from gis.localtime import format_date, format_datetime, to_local, utc_offset_label
from gis.settings import get_settings

ZONE = "Asia/Shanghai"


@pytest.mark.parametrize("instant", ["2024-03-01T02:22:00+00:00", "2024-03-01T10:00:59.987654Z",
                                     "2023-12-31T16:30:00+00:00", "2024-06-30T23:59:00-04:00"])
def test_datetimes_are_local_to_the_minute(instant: str) -> None:
    expected = pd.Timestamp(instant).tz_convert(ZONE)
    shown = format_datetime(instant, ZONE)
    assert shown == f"{expected.year}年{expected.month}月{expected.day}日 {expected.hour:02d}:{expected.minute:02d}"
    assert format_datetime(instant, ZONE, "en") == expected.strftime("%Y-%m-%d %H:%M")
    assert "+" not in shown and "." not in shown  # no offset, no microseconds


def test_the_stop_supply_notice_case_reads_beijing_time() -> None:
    # 02:22 and 10:00 UTC were printed for 10:22 and 18:00 Beijing time
    assert format_datetime(dt.datetime(2024, 3, 1, 2, 22, tzinfo=dt.UTC), ZONE) == "2024年3月1日 10:22"
    assert format_datetime(dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC), ZONE) == "2024年3月1日 18:00"


def test_legal_dates_are_never_a_day_early() -> None:
    # a transfer effective 2024-03-01 (local midnight) is stored as 2024-02-29T16:00Z
    assert format_date("2024-02-29T16:00:00+00:00", zone=ZONE) == "2024年3月1日"
    assert format_date(dt.date(2024, 3, 1)) == "2024年3月1日"
    assert format_date("2024-03-01", "en") == "2024-03-01"
    with pytest.raises(ValueError, match="zone"):
        format_date(dt.datetime(2024, 3, 1, tzinfo=dt.UTC))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="offset"):
        format_datetime(dt.datetime(2024, 3, 1, 10, 22), ZONE)
    with pytest.raises(ValueError, match="offset"):
        to_local("2024-03-01T10:22:00", ZONE)
    with pytest.raises(ValueError, match="date"):
        to_local("2024-03-01", ZONE)


def test_a_zone_with_summer_time_follows_it() -> None:
    winter, summer = "2024-01-15T12:00:00Z", "2024-07-15T12:00:00Z"
    assert format_datetime(winter, "Europe/Berlin", "en") == "2024-01-15 13:00"
    assert format_datetime(summer, "Europe/Berlin", "en") == "2024-07-15 14:00"
    assert utc_offset_label("Europe/Berlin", dt.datetime(2024, 7, 15, tzinfo=dt.UTC)) == "UTC+02:00"
    assert utc_offset_label(ZONE) == "UTC+08:00"


def test_time_zone_and_bureau_settings(monkeypatch) -> None:
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.service.time_zone == "Asia/Shanghai" and settings.service.bureau_name
        monkeypatch.setenv("GOVGIS_TIME_ZONE", "Asia/Xiamen")
        get_settings.cache_clear()
        with pytest.raises(ConfigError) as caught:
            get_settings()
        assert "GOVGIS_TIME_ZONE" in caught.value.detail and "Asia/Shanghai" in caught.value.detail
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
