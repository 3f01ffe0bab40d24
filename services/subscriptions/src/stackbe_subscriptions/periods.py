"""Billing periods: where a period ends, counted from the subscription's billing anchor.

Months are calendar months: a period that starts on 31 January ends on 28 (or 29)
February, then 31 March, because each end is counted from the anchor rather than from
the previous end, so short months never shift the billing day for good.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from stackbe_events.catalog import Interval

__all__ = ["add_interval", "period_end_after"]


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.month - 1 + months
    year, month = moment.year + total // 12, total % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_interval(anchor: datetime, interval: Interval, count: int) -> datetime:
    """``anchor`` plus ``count`` intervals."""
    if interval == "day":
        return anchor + timedelta(days=count)
    if interval == "week":
        return anchor + timedelta(weeks=count)
    if interval == "month":
        return _add_months(anchor, count)
    return _add_months(anchor, 12 * count)


def period_end_after(anchor: datetime, start: datetime, interval: Interval, count: int) -> datetime:
    """The end of the period that begins at ``start``: the first anchor + k periods after it."""
    k = 1
    while (end := add_interval(anchor, interval, k * count)) <= start:
        k += 1
    return end
