"""Where webhooks may go: public addresses only, unless the operator allows more.

A target is resolved and refused when any address it resolves to is not globally
routable: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (which
holds the cloud metadata address 169.254.169.254), shared (100.64/10), multicast,
reserved or unspecified; IPv4-mapped IPv6 addresses are judged as the IPv4 they carry.
``STACKBE_WEBHOOK_ALLOWED_NETWORKS`` lists networks allowed anyway (``make dev`` allows
loopback).

The check runs when an endpoint is saved (a clear 400) and again when each delivery
connects, inside the HTTP client's resolver, so a name that later resolves elsewhere
(DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["AddressRefused", "Guard", "GuardedResolver", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """The target is, or resolves to, an address webhooks may not reach."""


def parse_networks(value: str) -> tuple[Network, ...]:
    """``"127.0.0.0/8, ::1/128"`` -> networks; raises ValueError naming a bad entry."""
    found = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"STACKBE_WEBHOOK_ALLOWED_NETWORKS: {item!r} is not a network (CIDR)"
            ) from None
    return tuple(found)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, compatible, 6to4, Teredo, NAT64):
    it is judged as that address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class Guard:
    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = tuple(allowed)

    def permits(self, address: Address) -> bool:
        if any(address in network for network in self.allowed):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            inner = _embedded_ipv4(address)
            if inner is not None:
                return self.permits(inner)
            if address in _LOCAL_NAT64 or address.is_site_local:
                return False
        return address.is_global and not (address.is_multicast or address.is_reserved)

    def check_address(self, host: str, address: str) -> None:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
        if not self.permits(parsed):
            raise AddressRefused(
                f"{host} is {parsed}, a private, loopback, link-local or reserved address; "
                "webhooks go to public addresses only"
            )

    def _host(self, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises for a port outside 0-65535)
        except ValueError as exc:
            raise AddressRefused(f"not a valid URL: {exc}") from None
        if not parts.hostname:
            raise AddressRefused("the URL has no host")
        return parts.hostname

    def check_literal(self, url: str) -> None:
        """Refuse a URL whose host is a literal address that is not allowed (names are
        checked by ``GuardedResolver`` as they are connected to)."""
        host = self._host(url)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            return
        self.check_address(host, str(literal))

    async def check_url(self, url: str) -> None:
        """Resolve the URL's host and refuse it if any address is not allowed."""
        host = self._host(url)
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.check_address(host, str(literal))
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except (OSError, ValueError) as exc:  # ValueError: a name IDNA cannot encode
            raise AddressRefused(f"{host} does not resolve: {exc}") from None
        for *_, sockaddr in infos:
            self.check_address(host, str(sockaddr[0]))


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing every address the guard does not permit."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            self._guard.check_address(host, answer["host"])
        return answers

    async def close(self) -> None:
        await self._inner.close()
