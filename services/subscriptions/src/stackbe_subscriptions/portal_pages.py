"""The customer portal's pages: plain words, server-rendered, no JavaScript. Every value
that comes from an app or a customer is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

import asyncpg

from stackbe_common.currencies import format_amount
from stackbe_common.pages import Brand, page
from stackbe_events.catalog import Plan

from .portal import Preview

__all__ = ["NOTICES", "change_page", "confirm_page", "home_page", "login_page", "message_page"]

# What an action's redirect may announce (?done=...): fixed texts, nothing reflected.
NOTICES = {
    "canceled": "Your subscription will end at the end of the current period.",
    "reactivated": "Your subscription will renew as before.",
    "changed": "Your plan has changed.",
    "paused": "Your subscription is paused: no access and no charges until you resume it.",
    "resumed": "Your subscription is running again.",
    "scheduled": "Your plan will change at the end of the current period.",
}


def _day(at: datetime | None) -> str:
    return "" if at is None else f"{at:%d %B %Y}"


def _price(plan: Plan) -> str:
    every = plan.interval if plan.interval_count == 1 else f"{plan.interval_count} {plan.interval}s"
    return f"{format_amount(plan.price_cents, plan.currency)} every {every}"


def _entitlement(key: str, value: Any) -> str:
    name = escape(key.replace("_", " "))
    if value is True:
        return f"<li>{name}: included</li>"
    if value is False:
        return f"<li>{name}: not included</li>"
    if value == -1:
        return f"<li>{name}: unlimited</li>"
    if isinstance(value, list):
        return f"<li>{name}: {escape(', '.join(map(str, value)))}</li>"
    return f"<li>{name}: {escape(str(value))}</li>"


def _status(sub: asyncpg.Record) -> str:
    status = sub["status"]
    if status == "trialing" and sub["cancel_at_period_end"]:
        return f"Free trial until {_day(sub['trial_end'])}, then it ends"
    if status == "trialing":
        return f"Free trial until {_day(sub['trial_end'])}"
    if status == "active" and sub["cancel_at_period_end"]:
        return f"Active until {_day(sub['current_period_end'])}, then it ends"
    if status == "active":
        return "Active"
    if status == "past_due":
        return f"Payment overdue: access continues until {_day(sub['grace_ends_at'])}"
    if status == "paused":
        return "Paused"
    if status == "incomplete":
        return "Waiting for the first payment"
    return "Canceled"


def _form(action: str, csrf: str, label: str, extra: str = "", kind: str = "") -> str:
    css = f" class={kind}" if kind else ""
    return (
        f'<form method=post action="{escape(action, quote=True)}">'
        f'<input type=hidden name=csrf value="{escape(csrf, quote=True)}">{extra}'
        f"<button type=submit{css}>{escape(label)}</button></form>"
    )


def home_page(
    *,
    brand: Brand,
    base: str,
    email: str,
    csrf: str,
    sub: asyncpg.Record | None,
    plan: Plan | None,
    pending: Plan | None,
    plans: Sequence[Plan],
    payments: Sequence[asyncpg.Record],
    return_url: str | None,
    notice: str | None,
    pause_enabled: bool = False,
) -> str:
    back = (
        f'<p><a href="{escape(return_url, quote=True)}">Return to {escape(brand.name or "the app")}'
        "</a></p>"
        if return_url
        else ""
    )
    said = f"<p role=status>{escape(NOTICES[notice])}</p>" if notice in NOTICES else ""
    who = f"<p class=note>Signed in as {escape(email)}</p>"
    if sub is None or plan is None:
        body = "<h1>Your subscription</h1><p>You have no subscription.</p>"
        return page("Your subscription", f"{who}{said}{body}{back}", brand)
    facts = [
        ("Plan", escape(plan.name)),
        ("Price", escape(_price(plan))),
        ("Status", escape(_status(sub))),
    ]
    if sub["current_period_start"] and sub["status"] in ("active", "past_due"):
        period = f"{_day(sub['current_period_start'])} to {_day(sub['current_period_end'])}"
        facts.append(("Current period", period))
    if sub["status"] == "active" and not sub["cancel_at_period_end"]:
        renews = (
            f"{_day(sub['current_period_end'])}, {format_amount(plan.price_cents, plan.currency)}"
        )
        if pending is not None:
            renews = f"{_day(sub['current_period_end'])}, on {pending.name}"
        facts.append(("Renews", escape(renews)))
    if sub["status"] == "trialing":
        facts.append(("Trial ends", _day(sub["trial_end"])))
    listed = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    granted = "".join(_entitlement(k, v) for k, v in plan.entitlements.items())
    actions = []
    if sub["status"] in ("active", "trialing") and not sub["cancel_at_period_end"]:
        actions.append(_form(f"{base}/cancel", csrf, "Cancel at period end", kind="secondary"))
    if sub["cancel_at_period_end"] and sub["status"] != "canceled":
        actions.append(_form(f"{base}/reactivate", csrf, "Keep my subscription"))
    if pause_enabled and sub["status"] == "active" and not sub["cancel_at_period_end"]:
        actions.append(_form(f"{base}/pause", csrf, "Pause", kind="secondary"))
    if pause_enabled and sub["status"] == "paused":
        actions.append(_form(f"{base}/resume", csrf, "Resume"))
    choices = [p for p in plans if p.id != plan.id and p.currency == plan.currency]
    change = ""
    if sub["status"] in ("active", "trialing") and choices:
        options = "".join(
            f'<option value="{escape(p.id, quote=True)}">{escape(p.name)}: {escape(_price(p))}'
            "</option>"
            for p in choices
        )
        change = (
            f'<h2>Change plan</h2><form method=get action="{escape(base, quote=True)}/change">'
            f"<label for=plan>New plan</label><select id=plan name=plan>{options}</select>"
            "<div class=actions><button type=submit>Review the change</button></div></form>"
        )
    rows = "".join(
        f"<tr><td>{_day(p['created_at'])}</td>"
        f"<td>{escape(format_amount(p['amount_cents'], p['currency']))}</td>"
        f"<td>{escape(p['status'])}</td></tr>"
        for p in payments
    )
    history = (
        "<h2>Payments</h2><table><thead><tr><th scope=col>Date</th><th scope=col>Amount</th>"
        f"<th scope=col>Status</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<h2>Payments</h2><p>No payments yet.</p>"
    )
    body = (
        f"<h1>Your subscription</h1>{said}<dl>{listed}</dl>"
        f"<h2>What you get</h2><ul>{granted}</ul>"
        f"<div class=actions>{''.join(actions)}</div>{change}{history}"
    )
    return page("Your subscription", f"{who}{body}{back}", brand)


def change_page(
    *, brand: Brand, base: str, csrf: str, current: Plan, new: Plan, preview: Preview, when: str
) -> str:
    """What the change costs, before the customer confirms it."""
    if preview.by_stripe:
        cost = (
            f"Your plan changes to {escape(new.name)} now. The difference for the rest of this "
            "period is prorated on your next invoice."
        )
    elif preview.at_period_end:
        cost = f"Your plan changes to {escape(new.name)} on {escape(when)}. Nothing is charged now."
    elif preview.amount_cents > 0:
        amount = format_amount(preview.amount_cents, new.currency)
        cost = f"You will be charged {escape(amount)} now for the rest of this period (prorated)."
    elif preview.amount_cents < 0:
        amount = format_amount(-preview.amount_cents, new.currency)
        cost = f"{escape(amount)} will be refunded now for the unused part of this period."
    else:
        cost = "Nothing is charged now."
    hidden = f'<input type=hidden name=plan value="{escape(new.id, quote=True)}">'
    return page(
        "Change plan",
        f"<h1>Change to {escape(new.name)}</h1>"
        f"<dl><dt>Now</dt><dd>{escape(current.name)}: {escape(_price(current))}</dd>"
        f"<dt>New</dt><dd>{escape(new.name)}: {escape(_price(new))}</dd></dl>"
        f"<p>{cost}</p><div class=actions>"
        + _form(f"{base}/change-plan", csrf, "Confirm the change", hidden)
        + f'<a href="{escape(base, quote=True)}">Keep my plan</a></div>',
        brand,
    )


def login_page(brand: Brand, base: str, csrf: str, error: str | None = None) -> str:
    said = f"<p role=alert>{escape(error)}</p>" if error else ""
    return page(
        "Sign in",
        "<h1>Manage your subscription</h1>"
        "<p>Enter the email address you subscribed with. We will send you a link to sign "
        f"in.</p>{said}"
        f'<form method=post action="{escape(base, quote=True)}/login">'
        f'<input type=hidden name=csrf value="{escape(csrf, quote=True)}">'
        "<label for=email>Email</label>"
        "<input id=email name=email type=email autocomplete=email required>"
        "<div class=actions><button type=submit>Email me a sign-in link</button></div></form>",
        brand,
    )


def confirm_page(brand: Brand, base: str, token: str, csrf: str) -> str:
    """The link's page: only its button spends the link, so mail scanners cannot."""
    return page(
        "Sign in",
        "<h1>Sign in to manage your subscription</h1>"
        f'<form method=post action="{escape(base, quote=True)}/confirm">'
        f'<input type=hidden name=token value="{escape(token, quote=True)}">'
        f'<input type=hidden name=csrf value="{escape(csrf, quote=True)}">'
        "<div class=actions><button type=submit>Sign in</button></div></form>",
        brand,
    )


def message_page(title: str, message: str, brand: Brand | None = None) -> str:
    return page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>", brand)
