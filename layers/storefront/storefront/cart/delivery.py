"""Delivery windows: business days after dispatch, dispatch today only before the cut-off hour. Pure."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel


class DeliveryWindow(BaseModel):
    earliest: date
    latest: date


def is_business_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def next_business_day(day: date, holidays: Collection[date]) -> date:
    day += timedelta(days=1)
    while not is_business_day(day, holidays):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int, holidays: Collection[date]) -> date:
    for _ in range(count):
        day = next_business_day(day, holidays)
    return day


def dispatch_date(now: datetime, zone: ZoneInfo, cutoff_hour: int, holidays: Collection[date]) -> date:
    """Orders placed on a business day before the cut-off (shop time) leave today; others the next business day."""
    local = now.astimezone(zone)
    today = local.date()
    if is_business_day(today, holidays) and local.hour < cutoff_hour:
        return today
    return next_business_day(today, holidays)


def delivery_window(
    now: datetime, zone: ZoneInfo, cutoff_hour: int, holidays: Collection[date], min_days: int, max_days: int
) -> DeliveryWindow:
    dispatch = dispatch_date(now, zone, cutoff_hour, holidays)
    return DeliveryWindow(
        earliest=add_business_days(dispatch, min_days, holidays), latest=add_business_days(dispatch, max_days, holidays)
    )
