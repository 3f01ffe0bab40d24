"""Gateway settings: a frozen Struct read once from ``STACKBE_*`` variables."""

from __future__ import annotations

from stackbe_common.service import BaseSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings, frozen=True, kw_only=True):
    """What the gateway needs; it has no database, unlike the services behind it."""

    identity_url: str = "http://127.0.0.1:8101"
    catalog_url: str = "http://127.0.0.1:8102"
    subscriptions_url: str = "http://127.0.0.1:8103"
    entitlements_url: str = "http://127.0.0.1:8104"
    webhooks_url: str = "http://127.0.0.1:8105"
    rate_limit_per_minute: int = 1000
    customer_rate_limit_per_minute: int = 100
    anonymous_rate_limit_per_minute: int = 300
    # How many proxies in front of the gateway append to X-Forwarded-For; 0 trusts none
    # and takes the client address from the socket.
    trusted_proxy_hops: int = 0
    upstream_timeout_seconds: float = 30.0
    upstream_connections: int = 512
    key_use_report_seconds: float = 5.0

    @property
    def upstreams(self) -> dict[str, str]:
        """Base URL of each service the route table names."""
        return {
            "identity": self.identity_url.rstrip("/"),
            "catalog": self.catalog_url.rstrip("/"),
            "subscriptions": self.subscriptions_url.rstrip("/"),
            "entitlements": self.entitlements_url.rstrip("/"),
            "webhooks": self.webhooks_url.rstrip("/"),
        }
