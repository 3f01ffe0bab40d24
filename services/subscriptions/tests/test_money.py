"""Money and periods as pure functions, exact to the cent and to the microsecond.

Every expectation is worked out here by hand from the documented rules (the proration
formula in ``money.py``, calendar months from the anchor in ``periods.py``), with
``Fraction`` and a rounding helper of the test's own, never by asking the code under test.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from stackbe_subscriptions.machine import Terms, is_upgrade
from stackbe_subscriptions.money import Proration, monthly_cents, prorate, round_half_up
from stackbe_subscriptions.periods import add_interval, period_end_after


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def half_up(value: Fraction) -> int:
    """The test's own rounding: halves up, for the non-negative amounts of these tests."""
    assert value >= 0
    return math.floor(value + Fraction(1, 2))


def share(start: datetime, end: datetime, moment: datetime) -> Fraction:
    """Remaining / length, over whole microseconds."""
    micro = timedelta(microseconds=1)
    return Fraction((end - moment) // micro, (end - start) // micro)


# Periods


def test_a_month_from_the_31st_is_the_last_day_of_a_shorter_month():
    """Month ends clamp: 31 January + 1 month is 28 February, or 29 in a leap year;
    + 2 months is 31 March again (counted from the anchor, not from February)."""
    assert add_interval(at(2030, 1, 31, 9, 30), "month", 1) == at(2030, 2, 28, 9, 30)
    assert add_interval(at(2028, 1, 31, 9, 30), "month", 1) == at(2028, 2, 29, 9, 30)
    assert add_interval(at(2030, 1, 31, 9, 30), "month", 2) == at(2030, 3, 31, 9, 30)
    assert add_interval(at(2030, 12, 31), "month", 2) == at(2031, 2, 28)  # across a year
    assert add_interval(at(2030, 3, 31), "month", 1) == at(2030, 4, 30)


@pytest.mark.parametrize("year", [2030, 2028])
def test_a_year_of_monthly_periods_keeps_the_anchor_day(year):
    """Chaining period_end_after from each end over a year: every end is the anchor's day
    (31) or the last day of a shorter month, and the day never drifts down to 28."""
    anchor = at(year, 1, 31, 9, 30, 15)
    start = anchor
    ends = []
    for _ in range(12):
        start = period_end_after(anchor, start, "month", 1)
        ends.append(start)
    expected = []
    for k in range(1, 13):
        y, m = year + k // 12, k % 12 + 1
        expected.append(at(y, m, min(31, calendar.monthrange(y, m)[1]), 9, 30, 15))
    assert ends == expected
    assert ends[0] == at(year, 2, 29 if year == 2028 else 28, 9, 30, 15)
    assert ends[1] == at(year, 3, 31, 9, 30, 15)
    assert ends[-1] == at(year + 1, 1, 31, 9, 30, 15)


def test_period_end_after_a_moment_inside_a_period_is_that_period_end():
    """The end of the period containing ``start`` is the first anchor + k periods strictly
    after it: a start exactly on an end belongs to the next period."""
    anchor = at(2030, 1, 31)
    assert period_end_after(anchor, anchor, "month", 1) == at(2030, 2, 28)
    assert period_end_after(anchor, at(2030, 2, 27, 23, 59), "month", 1) == at(2030, 2, 28)
    assert period_end_after(anchor, at(2030, 2, 28), "month", 1) == at(2030, 3, 31)
    assert period_end_after(anchor, at(2030, 3, 1), "month", 1) == at(2030, 3, 31)


def test_weekly_daily_and_yearly_from_the_29th_of_february():
    """Weeks and days are fixed lengths; a year from 29 February is 28 February, and the
    anchor brings back the 29th four years on."""
    leap = at(2028, 2, 29, 12)
    assert add_interval(leap, "week", 1) == at(2028, 3, 7, 12)
    assert add_interval(leap, "week", 2) == at(2028, 3, 14, 12)
    assert add_interval(leap, "day", 1) == at(2028, 3, 1, 12)
    assert add_interval(leap, "day", 30) == at(2028, 3, 30, 12)
    assert add_interval(leap, "year", 1) == at(2029, 2, 28, 12)
    assert add_interval(leap, "year", 4) == at(2032, 2, 29, 12)

    start, ends = leap, []
    for _ in range(4):
        start = period_end_after(leap, start, "year", 1)
        ends.append(start)
    assert ends == [
        at(2029, 2, 28, 12),
        at(2030, 2, 28, 12),
        at(2031, 2, 28, 12),
        leap.replace(2032),
    ]

    assert period_end_after(leap, at(2028, 3, 8), "week", 1) == at(2028, 3, 14, 12)
    assert period_end_after(leap, at(2028, 3, 1, 12), "day", 1) == at(2028, 3, 2, 12)


def test_every_three_months_counts_from_the_anchor():
    """interval_count 3: 30 November, 28 February (clamped), 30 May, 30 August."""
    anchor = at(2029, 11, 30, 8)
    assert add_interval(anchor, "month", 3) == at(2030, 2, 28, 8)
    start, ends = anchor, []
    for _ in range(3):
        start = period_end_after(anchor, start, "month", 3)
        ends.append(start)
    assert ends == [at(2030, 2, 28, 8), at(2030, 5, 30, 8), at(2030, 8, 30, 8)]
    assert period_end_after(anchor, at(2030, 1, 15), "month", 3) == at(2030, 2, 28, 8)


# Rounding


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        (Fraction(1, 2), 1),
        (Fraction(3, 2), 2),
        (Fraction(5, 2), 3),
        (Fraction(2499, 2), 1250),
        (Fraction(0), 0),
        (Fraction(3), 3),
        (Fraction(1000), 1000),
        (Fraction(2499, 1000), 2),
        (Fraction(2501, 1000), 3),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(-5, 2), -3),  # away from zero
        (Fraction(-1, 3), 0),
    ],
)
def test_round_half_up(value, rounded):
    """Halves go up (away from zero); exact values are unchanged; others go to the nearest."""
    result = round_half_up(value)
    assert result == rounded and isinstance(result, int)


# Proration

APRIL = (at(2030, 4, 1), at(2030, 5, 1))  # 30 days


def test_upgrade_at_half_of_a_30_day_period():
    """Half left: the unused half of 1000 is credited, half of 3000 charged, 1000 due."""
    start, end = APRIL
    p = prorate(1000, 3000, start, end, at(2030, 4, 16), same_period=True)
    assert p == Proration(credit_cents=500, charge_cents=1500, amount_cents=1000, new_period=False)


def test_credit_and_charge_are_rounded_separately():
    """999 -> 2999 with 2/3 of the period left (changed at 1/3): credit 666 exactly,
    charge 1999.33 -> 1999, amount 1333. 1000 -> 2999 with 1/3 left: 333.33 -> 333 and
    999.67 -> 1000, so 667, where rounding the difference (1999/3) would give 666."""
    start, end = APRIL
    third = at(2030, 4, 11)
    r = share(start, end, third)
    assert r == Fraction(2, 3)
    p = prorate(999, 2999, start, end, third, same_period=True)
    assert (p.credit_cents, p.charge_cents) == (half_up(999 * r), half_up(2999 * r)) == (666, 1999)
    assert p.amount_cents == 1333

    two_thirds = at(2030, 4, 21)
    r = share(start, end, two_thirds)
    assert r == Fraction(1, 3)
    p = prorate(1000, 2999, start, end, two_thirds, same_period=True)
    assert (p.credit_cents, p.charge_cents, p.amount_cents) == (333, 1000, 667)
    assert half_up((2999 - 1000) * r) == 666  # not the formula


def test_halves_of_a_cent_round_up_in_both_credit_and_charge():
    """999 -> 2999 at half: 499.5 -> 500 credited, 1499.5 -> 1500 charged."""
    start, end = APRIL
    p = prorate(999, 2999, start, end, at(2030, 4, 16), same_period=True)
    assert (p.credit_cents, p.charge_cents, p.amount_cents) == (500, 1500, 1000)


def test_an_odd_moment_in_a_31_day_month_is_exact_to_the_microsecond():
    """20.5 days and 1 microsecond left of 31: r = (20.5 d + 1 us) / 31 d."""
    start, end = at(2030, 1, 1), at(2030, 2, 1)
    moment = at(2030, 1, 11, 12) - timedelta(microseconds=1)
    r = Fraction(20 * 86_400_000_000 + 43_200_000_000 + 1, 31 * 86_400_000_000)
    assert share(start, end, moment) == r
    p = prorate(1000, 3000, start, end, moment, same_period=True)
    assert (p.credit_cents, p.charge_cents) == (half_up(1000 * r), half_up(3000 * r)) == (661, 1984)
    assert p.amount_cents == 1323


def test_a_change_at_the_period_start_or_end():
    """At the start the whole prices count; at the end (or after it) nothing remains;
    before the start the share is capped at the whole period."""
    start, end = APRIL
    assert prorate(1000, 3000, start, end, start, same_period=True) == Proration(
        1000, 3000, 2000, False
    )
    assert prorate(1000, 3000, start, end, end, same_period=True) == Proration(0, 0, 0, False)
    assert prorate(1000, 3000, start, end, end + timedelta(days=1), True) == Proration(
        0, 0, 0, False
    )
    before = start - timedelta(days=1)
    assert prorate(1000, 3000, start, end, before, True) == Proration(1000, 3000, 2000, False)


def test_a_microsecond_after_the_start():
    """One microsecond used out of 30 days: both amounts still round to the full prices."""
    start, end = APRIL
    p = prorate(1000, 3000, start, end, start + timedelta(microseconds=1), same_period=True)
    assert p == Proration(1000, 3000, 2000, False)


def test_monthly_to_yearly_charges_the_full_new_price_minus_the_credit():
    """A different period: a new period starts, the whole yearly price is charged and the
    unused quarter of the month credited (12000 - 250)."""
    start, end = APRIL
    moment = at(2030, 4, 23, 12)  # 7.5 of 30 days left
    r = share(start, end, moment)
    assert r == Fraction(1, 4)
    p = prorate(1000, 12000, start, end, moment, same_period=False)
    assert p == Proration(credit_cents=250, charge_cents=12000, amount_cents=11750, new_period=True)


def test_a_downgrade_is_refunded():
    """3000 -> 1000 at half: 1500 credited, 500 charged, 1000 refunded (negative)."""
    start, end = APRIL
    p = prorate(3000, 1000, start, end, at(2030, 4, 16), same_period=True)
    assert p == Proration(credit_cents=1500, charge_cents=500, amount_cents=-1000, new_period=False)

    year = (at(2030, 1, 1), at(2031, 1, 1))  # yearly 12000 -> monthly 1000 with 3/4 left
    moment = year[0] + (year[1] - year[0]) / 4
    assert share(*year, moment) == Fraction(3, 4)
    p = prorate(12000, 1000, *year, moment, same_period=False)
    assert p == Proration(credit_cents=9000, charge_cents=1000, amount_cents=-8000, new_period=True)


# Monthly normalisation


def test_monthly_cents():
    """A plan's price per month, exactly: a year / 12, a week * 365 / 12 / 7, a day * 365
    / 12, and an interval_count divides."""
    assert monthly_cents(12000, "year", 1) == 1000
    assert monthly_cents(24000, "year", 2) == 1000
    assert monthly_cents(1000, "month", 1) == 1000
    assert monthly_cents(3000, "month", 3) == 1000
    weekly = monthly_cents(700, "week", 1)
    assert weekly == Fraction(700 * 365, 12 * 7) == Fraction(63875, 21)
    assert isinstance(weekly, Fraction)
    assert monthly_cents(1400, "week", 2) == weekly
    assert monthly_cents(100, "day", 1) == Fraction(100 * 365, 12) == Fraction(9125, 3)
    assert monthly_cents(2999, "month", 3) == Fraction(2999, 3)


def test_an_upgrade_costs_more_per_month():
    """is_upgrade compares monthly prices: yearly 11999 (999.92 a month) is cheaper than
    monthly 1000; yearly 12001 dearer; an equal monthly price is not an upgrade."""

    def terms(price: int, interval: str, count: int = 1) -> Terms:
        return Terms(f"plan_{price}{interval}", price, "USD", interval, count)  # type: ignore[arg-type]

    monthly = terms(1000, "month")
    assert not is_upgrade(monthly, terms(11999, "year"))
    assert is_upgrade(monthly, terms(12001, "year"))
    assert not is_upgrade(monthly, terms(12000, "year"))
    assert is_upgrade(monthly, terms(3000, "month"))
    assert not is_upgrade(terms(3000, "month"), monthly)
    assert is_upgrade(monthly, terms(231, "week"))  # 231 * 365 / 84 = 1003.75
    assert not is_upgrade(monthly, terms(230, "week"))  # 999.40
