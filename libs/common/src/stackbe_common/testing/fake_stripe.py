"""A fake Stripe API on loopback for tests: the official SDK is pointed at it through
``STACKBE_STRIPE_API_BASE``. It answers the calls StackBE makes (account, customers,
products, prices, Checkout Sessions, subscriptions), keeps objects per account, replays
a repeated ``Idempotency-Key`` as Stripe does, records each call (method, path, form
parameters, headers), and sends events signed the way Stripe signs them
(``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">``).

What Stripe does by itself (a customer paying, a renewal failing, a subscription ending)
the tests do through ``pay``, ``fail_renewal`` and ``end``: each changes the objects and
returns the events Stripe would send, for the test to deliver in whatever order it likes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

Obj = dict[str, Any]
PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (``a[b][0][c]=v``) as nested dicts; list indexes stay keys."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def signature(body: str, secret: str, at: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe sends with ``body``."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Account:
    id: str
    objects: dict[str, Obj] = field(default_factory=dict)  # every object, by id
    replies: dict[str, Obj] = field(default_factory=dict)  # idempotency key -> reply


@dataclass
class FakeStripe:
    """``async with FakeStripe() as stripe``: ``stripe.url`` is the API base."""

    keys: dict[str, Account] = field(default_factory=dict)  # secret key -> account
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _open: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._open.set()

    def hold(self) -> None:
        """Keep every answer back until ``release`` (calls are still recorded as they
        come): requests to StackBE that call Stripe stay in flight meanwhile."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def account_for(self, key: str) -> str:
        """Make ``key`` a valid secret key of a new account; the account id."""
        account = Account(f"acct_{secrets.token_hex(8)}")
        self.keys[key] = account
        return account.id

    def objects(self, kind: str) -> list[Obj]:
        """Every object of ``kind`` ("customer", "subscription", ...) over all accounts."""
        return [o for a in self.keys.values() for o in a.objects.values() if o["object"] == kind]

    def get(self, object_id: str) -> Obj:
        for account in self.keys.values():
            if object_id in account.objects:
                return account.objects[object_id]
        raise KeyError(object_id)

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.fullmatch(path, c.path)]

    async def __aenter__(self) -> FakeStripe:
        """Serve from a thread of its own, with its own event loop: a test client that
        runs the app while blocking the test's loop still gets answers."""
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="fake-stripe", daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{started.result(timeout=10)}"
        return self

    def _serve(self, started: concurrent.futures.Future[int]) -> None:
        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            started.set_result(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._loop.run_forever()
        assert self._runner is not None
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    async def __aexit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    # The API

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        params = parse_form(body or request.query_string)
        self.calls.append(Call(request.method, request.path, params, dict(request.headers)))
        # Released from the test's thread, so a threading.Event, polled from this loop.
        while not self._open.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        account = self.keys.get(key)
        if account is None:
            return _error(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}***")
        idempotency = request.headers.get("Idempotency-Key")
        if idempotency and idempotency in account.replies:
            return web.json_response(account.replies[idempotency])
        try:
            reply = self._answer(account, key, request.method, request.path, params)
        except LookupError as exc:
            return _error(404, "invalid_request_error", f"No such object: {exc}")
        if idempotency and request.method == "POST":
            account.replies[idempotency] = reply
        return web.json_response(reply)

    def _answer(self, account: Account, key: str, method: str, path: str, p: Obj) -> Obj:
        parts = path.strip("/").split("/")[1:]  # after "v1"
        store = account.objects
        if (method, parts) == ("GET", ["account"]):
            return {"id": account.id, "object": "account", "charges_enabled": True}
        if method == "POST" and parts == ["customers"]:
            return self._put(store, _id("cus"), "customer", email=p.get("email"), **_meta(p))
        if method == "POST" and parts == ["products"]:
            return self._put(store, _id("prod"), "product", name=p["name"], **_meta(p))
        if method == "POST" and parts == ["prices"]:
            recurring = p["recurring"]
            return self._put(
                store,
                _id("price"),
                "price",
                product=p["product"],
                unit_amount=int(p["unit_amount"]),
                currency=p["currency"],
                recurring={
                    "interval": recurring["interval"],
                    "interval_count": int(recurring.get("interval_count", 1)),
                },
                **_meta(p),
            )
        if method == "POST" and parts == ["checkout", "sessions"]:
            session_id = _id("cs_test")
            return self._put(
                store,
                session_id,
                "checkout.session",
                mode=p["mode"],
                customer=p.get("customer"),
                status="open",
                subscription=None,
                url=f"{self.url}/pay/{session_id}",
                success_url=p["success_url"],
                cancel_url=p["cancel_url"],
                line_items=[p["line_items"][i] for i in sorted(p["line_items"])],
                subscription_data=p.get("subscription_data", {}),
                **_meta(p),
            )
        if parts[:1] == ["subscriptions"]:
            return self._subscriptions(store, method, parts[1:], p)
        raise LookupError(path)

    def _subscriptions(self, store: dict[str, Obj], method: str, rest: list[str], p: Obj) -> Obj:
        if method == "GET" and not rest:
            found = [
                o
                for o in store.values()
                if o["object"] == "subscription"
                and p.get("customer") in (None, o["customer"])
                and (p.get("status", "all") == "all" or p.get("status") == o["status"])
            ]
            found.sort(key=lambda o: o["id"])
            after = p.get("starting_after")
            if after:
                found = [o for o in found if o["id"] > after]
            limit = int(p.get("limit", 10))
            return {
                "object": "list",
                "url": "/v1/subscriptions",
                "has_more": len(found) > limit,
                "data": found[:limit],
            }
        sub = store[rest[0]]
        if sub["object"] != "subscription":
            raise LookupError(rest[0])
        if method == "GET":
            return sub
        if rest[1:] == ["resume"]:  # Stripe paused it itself (a trial without a card)
            sub.update(status="active", pause_collection=None)
            return sub
        if method == "DELETE":
            sub.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
            return sub
        if "cancel_at_period_end" in p:
            sub["cancel_at_period_end"] = p["cancel_at_period_end"] == "true"
        if "pause_collection" in p:
            given = p["pause_collection"]
            sub["pause_collection"] = (
                None if given == "" else {"behavior": given["behavior"], "resumes_at": None}
            )
        if "items" in p:
            item = p["items"]["0"]
            price = store[item["price"]]
            for current in sub["items"]["data"]:
                if current["id"] == item["id"]:
                    current["price"] = price
        if "metadata" in p:
            sub["metadata"].update(p["metadata"])
        return sub

    @staticmethod
    def _put(store: dict[str, Obj], object_id: str, kind: str, **fields: Any) -> Obj:
        made = {"id": object_id, "object": kind, "created": int(time.time()), **fields}
        made.setdefault("metadata", {})
        store[object_id] = made
        return made

    # What Stripe does by itself

    def event(self, kind: str, obj: Obj) -> Obj:
        """The event Stripe would send about ``obj`` (a snapshot of it, as now)."""
        return {
            "id": _id("evt"),
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2025-09-30.clover",
            "data": {"object": copy.deepcopy(obj)},
        }

    def pay(self, session_id: str) -> list[Obj]:
        """The customer pays the Checkout Session: its subscription starts (trialing if the
        session asked for trial days), and the first invoice is paid. The events Stripe
        sends: session completed, subscription created, invoice paid."""
        account = self._owner(session_id)
        session = account.objects[session_id]
        price = account.objects[session["line_items"][0]["price"]]
        now = int(time.time())
        trial_days = int(session["subscription_data"].get("trial_period_days", 0))
        period = PERIOD_DAYS[price["recurring"]["interval"]] * price["recurring"]["interval_count"]
        end = now + 86_400 * (trial_days or period)
        sub = self._put(
            account.objects,
            _id("sub"),
            "subscription",
            customer=session["customer"],
            status="trialing" if trial_days else "active",
            cancel_at_period_end=False,
            canceled_at=None,
            ended_at=None,
            trial_start=now if trial_days else None,
            trial_end=end if trial_days else None,
            pause_collection=None,
            billing_cycle_anchor=end if trial_days else now,
            start_date=now,
            metadata=dict(session["subscription_data"].get("metadata", {})),
            items={
                "object": "list",
                "url": "/v1/subscription_items",
                "has_more": False,
                "data": [
                    {
                        "id": _id("si"),
                        "object": "subscription_item",
                        "price": price,
                        "quantity": 1,
                        "current_period_start": now,
                        "current_period_end": end,
                    }
                ],
            },
        )
        session.update(status="complete", subscription=sub["id"])
        amount = 0 if trial_days else price["unit_amount"]
        invoice = self._invoice(account, sub, amount, "paid", "subscription_create")
        return [
            self.event("checkout.session.completed", session),
            self.event("customer.subscription.created", sub),
            self.event("invoice.paid", invoice),
        ]

    def fail_renewal(self, subscription_id: str) -> list[Obj]:
        """A renewal's charge fails: the subscription goes past_due."""
        account = self._owner(subscription_id)
        sub = account.objects[subscription_id]
        sub["status"] = "past_due"
        price = sub["items"]["data"][0]["price"]
        invoice = self._invoice(account, sub, price["unit_amount"], "open", "subscription_cycle")
        return [
            self.event("invoice.payment_failed", invoice),
            self.event("customer.subscription.updated", sub),
        ]

    def end(self, subscription_id: str) -> list[Obj]:
        """The subscription ends (canceled in Stripe's dashboard, or dunning gave up)."""
        sub = self._owner(subscription_id).objects[subscription_id]
        sub.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
        return [self.event("customer.subscription.deleted", sub)]

    def _invoice(self, account: Account, sub: Obj, amount: int, status: str, reason: str) -> Obj:
        price = sub["items"]["data"][0]["price"]
        return self._put(
            account.objects,
            _id("in"),
            "invoice",
            customer=sub["customer"],
            status=status,
            billing_reason=reason,
            currency=price["currency"],
            amount_due=amount,
            amount_paid=amount if status == "paid" else 0,
            parent={
                "type": "subscription_details",
                "subscription_details": {"subscription": sub["id"]},
            },
        )

    def _owner(self, object_id: str) -> Account:
        for account in self.keys.values():
            if object_id in account.objects:
                return account
        raise KeyError(object_id)

    async def send_event(self, url: str, event: Obj, secret: str) -> int:
        """POST ``event`` to a webhook URL, signed with ``secret``; the status answered."""
        body = json.dumps(event)
        headers = {"Stripe-Signature": signature(body, secret), "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            return answer.status


def _meta(p: Obj) -> Obj:
    return {"metadata": dict(p.get("metadata", {}))}


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)
