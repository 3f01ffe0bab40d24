"""A fake Stripe API on loopback for tests: the official SDK is pointed at it through
``STACKBE_STRIPE_API_BASE``. It answers the calls StackBE makes, records each one (method,
path, form parameters, headers), and sends events signed the way Stripe signs them
(``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.body">``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web


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


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    """``async with FakeStripe() as stripe``: ``stripe.url`` is the API base."""

    keys: dict[str, str] = field(default_factory=dict)  # secret key -> account id
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def account_for(self, key: str) -> str:
        """Make ``key`` a valid secret key of a new account; the account id."""
        account = f"acct_{secrets.token_hex(8)}"
        self.keys[key] = account
        return account

    async def __aenter__(self) -> FakeStripe:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        params = parse_form(body or request.query_string)
        self.calls.append(Call(request.method, request.path, params, dict(request.headers)))
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        account = self.keys.get(key)
        if account is None:
            return _error(401, "invalid_request_error", f"Invalid API Key provided: {key[:8]}***")
        if request.method == "GET" and request.path == "/v1/account":
            return web.json_response(
                {"id": account, "object": "account", "livemode": key.startswith("sk_live_")}
            )
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({request.path})")

    async def send_event(self, url: str, event: dict[str, Any], secret: str) -> int:
        """POST ``event`` to a webhook URL, signed with ``secret``; the status answered."""
        body = json.dumps(event)
        headers = {"Stripe-Signature": signature(body, secret), "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers=headers) as answer,
        ):
            return answer.status


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message}}, status=status)
