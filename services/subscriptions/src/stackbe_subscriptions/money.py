"""Amounts in minor units: monthly normalisation for MRR, and the proration formula.

Proration when a plan changes during a paid period (documented in docs/billing.md):

    remaining = period end - change time        (in microseconds)
    length    = period end - period start
    credit    = round(old price * remaining / length)
    charge    = round(new price * remaining / length)     (same interval and count)
    amount    = charge - credit

Rounding is half up, to the minor unit. When the billing period differs (monthly to
yearly, say), a new period starts at the change and the amount is the new plan's full
price minus the credit. A positive amount is charged at once, a negative one refunded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from stackbe_events.catalog import Interval

__all__ = ["Proration", "monthly_cents", "prorate", "round_half_up"]

# How many of each interval make a month, on average over a year.
_PER_MONTH: dict[Interval, Fraction] = {
    "day": Fraction(365, 12),
    "week": Fraction(365, 12 * 7),
    "month": Fraction(1),
    "year": Fraction(1, 12),
}


def round_half_up(value: Fraction) -> int:
    """The nearest whole number, halves away from zero (amounts here are never negative)."""
    return int(value + Fraction(1, 2)) if value >= 0 else -int(-value + Fraction(1, 2))


def monthly_cents(price_cents: int, interval: Interval, count: int) -> Fraction:
    """A plan's price as if it were billed monthly (exact; round when you show it)."""
    return Fraction(price_cents) * _PER_MONTH[interval] / count


def _micros(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Proration:
    credit_cents: int  # the unused part of the old plan
    charge_cents: int  # what the new plan costs from the change on
    amount_cents: int  # charge - credit: positive is charged, negative refunded
    new_period: bool  # the change starts a new billing period


def prorate(
    old_price: int,
    new_price: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
    same_period: bool,
) -> Proration:
    """The amounts of a change of plan made at ``at`` inside [period_start, period_end)."""
    length = _micros(period_start, period_end)
    remaining = max(0, min(length, _micros(at, period_end)))
    share = Fraction(remaining, length) if length > 0 else Fraction(0)
    credit = round_half_up(old_price * share)
    charge = round_half_up(new_price * share) if same_period else new_price
    return Proration(credit, charge, charge - credit, new_period=not same_period)
