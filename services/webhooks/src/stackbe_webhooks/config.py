"""Webhooks settings, read once from ``STACKBE_*`` variables."""

from __future__ import annotations

from stackbe_common.service import ServiceSettings


class WebhooksSettings(ServiceSettings, frozen=True, kw_only=True):
    # Networks that delivery may reach although they are not public (CIDRs, comma-separated).
    # Empty in production: private, loopback, link-local and metadata addresses are refused.
    webhook_allowed_networks: str = ""
    webhook_timeout_seconds: float = 15.0  # a 2xx within this is a success
    webhook_retention_days: int = 30  # messages, their payloads and attempts are kept this long
    webhook_disable_after_days: float = 5.0  # continuous failure for this long disables
    webhook_endpoint_concurrency: int = 8  # in-flight deliveries per endpoint, per worker
    webhook_concurrency: int = 256  # in-flight deliveries per worker
    rpc_timeout_seconds: float = 2.0
    # Tenants' StackBE plans limit their webhook endpoints (asked of identity over NATS).
    tenant_limits: bool = True
