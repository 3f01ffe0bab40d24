"""The floors every figure is compared with, served by granian like StackBE itself:

- ``hello``: a bare Litestar endpoint;
- ``proxy``: Litestar forwarding every request to ``hello`` over one pooled aiohttp
  session, the least any gateway in front of a service can cost.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from litestar import Litestar, Request, Response, get

BODY = b'{"feature":"analytics","hasAccess":true,"value":true}'


def hello() -> Litestar:
    @get("/{path:path}", sync_to_thread=False)
    def answer() -> Response[bytes]:
        return Response(BODY, media_type="application/json")

    return Litestar(route_handlers=[answer], openapi_config=None)


def proxy() -> Litestar:
    upstream = os.environ["BENCH_UPSTREAM"].rstrip("/")
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=60)
        state["session"] = aiohttp.ClientSession(connector=connector)
        try:
            yield
        finally:
            await state["session"].close()

    @get("/{path:path}")
    async def forward(request: Request[Any, Any, Any]) -> Response[bytes]:
        url = upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        async with state["session"].get(url) as answer:
            body = await answer.read()
            return Response(body, status_code=answer.status, media_type="application/json")

    return Litestar(route_handlers=[forward], lifespan=[lifespan], openapi_config=None)
