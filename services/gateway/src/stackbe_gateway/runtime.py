"""What a running gateway process holds: NATS, one pooled HTTP session, caches, timers.

Created in the Litestar lifespan (one per process, so one per granian worker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import aiohttp
from litestar.types import Scope as ASGIScope
from nats.aio.client import Client as NATS

from stackbe_common import bus
from stackbe_common.errors import StackBEError
from stackbe_common.logging import get_logger

from .config import GatewaySettings
from .context import client_ip
from .credentials import Credentials
from .openapi import OpenAPIMerger
from .proxy import Limits, Proxy, RouteTable
from .ratelimit import RateLimiter, Verdict
from .revocation import RevocationFeed
from .usage import KeyUsageReporter

__all__ = ["Gateway"]

log = get_logger(__name__)

JWKS_REFRESH_SECONDS = 300.0
_SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def open_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The one upstream session: pooled, no decompression, no cookies, no redirects."""
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_connections,
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=2.0, sock_read=settings.upstream_timeout_seconds
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_SKIP_AUTO_HEADERS,
    )


class Gateway:
    def __init__(
        self, settings: GatewaySettings, table: RouteTable, nc: NATS, session: aiohttp.ClientSession
    ) -> None:
        self.settings, self.table, self.nc, self.session = settings, table, nc, session
        self.credentials = Credentials(nc)
        self.feed = RevocationFeed(nc, self.credentials)
        self.limiter = RateLimiter()
        self.limits = Limits(
            credential=settings.rate_limit_per_minute,
            customer=settings.customer_rate_limit_per_minute,
            anonymous=settings.anonymous_rate_limit_per_minute,
        )
        self.proxy = Proxy(
            credentials=self.credentials,
            limiter=self.limiter,
            limits=self.limits,
            table=table,
            session=session,
            secret=settings.secret,
            trusted_proxy_hops=settings.trusted_proxy_hops,
        )
        self.openapi = OpenAPIMerger(session, table, settings.secret)
        self.usage = KeyUsageReporter(nc, self.credentials, settings.key_use_report_seconds)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, settings: GatewaySettings, table: RouteTable) -> Gateway:
        nc = NATS()
        gateway = cls(settings, table, nc, open_session(settings))
        await bus.connect(
            settings.nats_url,
            "gateway",
            client=nc,
            on_reconnect=gateway.feed.reconnected,
            on_lost_messages=gateway.feed.lost_messages,
        )
        await gateway.feed.start()
        gateway._tasks = [
            asyncio.create_task(gateway.usage.run()),
            asyncio.create_task(_every(JWKS_REFRESH_SECONDS, gateway.refresh_jwks)),
        ]
        log.info("gateway.started", upstreams=table.services)
        return gateway

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.usage.report()
        await self.feed.stop()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        await self.session.close()

    async def refresh_jwks(self) -> None:
        # a failure is logged by ask_identity; the next token with an unknown kid retries
        with contextlib.suppress(StackBEError):
            await self.credentials.verifier.refresh()

    def limit_by_address(self, scope: ASGIScope) -> Verdict:
        """Rate-limit the gateway's own public pages per client address."""
        ip = client_ip(scope, self.settings.trusted_proxy_hops)
        return self.limiter.hit(f"ip:{ip}", self.limits.anonymous)

    async def upstream_healthy(self, base: str) -> bool:
        try:
            async with self.session.get(
                base + "/health", timeout=aiohttp.ClientTimeout(total=1.0)
            ) as response:
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False


async def _every(seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    while True:
        await work()
        await asyncio.sleep(seconds)
