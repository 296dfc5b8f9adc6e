"""Delivery windows: cut-off hour in the shop's time zone, weekends and holidays skipped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from storefront.cart.delivery import add_business_days, delivery_window, dispatch_date

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = {date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)}


@pytest.mark.parametrize(
    ("now_utc", "dispatch"),
    [
        (datetime(2026, 11, 26, 12, 59, tzinfo=UTC), date(2026, 11, 26)),  # Thu 13:59 Berlin: before 14:00
        (datetime(2026, 11, 26, 13, 0, tzinfo=UTC), date(2026, 11, 27)),  # Thu 14:00 Berlin: tomorrow
        (datetime(2026, 11, 27, 22, 30, tzinfo=UTC), date(2026, 11, 30)),  # Fri 23:30 Berlin -> Monday
        (datetime(2026, 11, 28, 9, 0, tzinfo=UTC), date(2026, 11, 30)),  # Saturday -> Monday
        (datetime(2026, 11, 29, 23, 30, tzinfo=UTC), date(2026, 11, 30)),  # Sun 23:30 UTC is Mon 00:30 Berlin
        (datetime(2026, 12, 23, 14, 0, tzinfo=UTC), date(2026, 12, 28)),  # after cut-off before Christmas
    ],
)
def test_dispatch_date(now_utc: datetime, dispatch: date) -> None:
    assert dispatch_date(now_utc, BERLIN, 14, HOLIDAYS) == dispatch


def test_summer_time_is_respected() -> None:
    # 12:30 UTC is 14:30 in Berlin in July (UTC+2): past the cut-off
    assert dispatch_date(datetime(2026, 7, 2, 12, 30, tzinfo=UTC), BERLIN, 14, set()) == date(2026, 7, 3)


def test_business_days_skip_weekends_and_holidays() -> None:
    assert add_business_days(date(2026, 11, 27), 1, set()) == date(2026, 11, 30)
    assert add_business_days(date(2026, 12, 23), 1, HOLIDAYS) == date(2026, 12, 28)
    assert add_business_days(date(2026, 12, 23), 0, HOLIDAYS) == date(2026, 12, 23)


def test_window() -> None:
    window = delivery_window(datetime(2026, 11, 26, 10, 0, tzinfo=UTC), BERLIN, 14, set(), 1, 3)
    assert (window.earliest, window.latest) == (date(2026, 11, 27), date(2026, 12, 1))
