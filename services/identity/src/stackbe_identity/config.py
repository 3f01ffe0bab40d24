"""Identity settings, read once from ``STACKBE_*`` variables in ``__main__``."""

from __future__ import annotations

from typing import Literal

from stackbe_common.service import ServiceSettings


class IdentitySettings(ServiceSettings, frozen=True, kw_only=True):
    jwt_signing_keys: str
    public_url: str = "http://127.0.0.1:8080"
    # Where identity reaches the public API (StackBE Billing); public_url when unset.
    gateway_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "StackBE <no-reply@stackbe.localhost>"
    signup: Literal["open", "closed"] = "open"
    platform_tenant_id: str | None = None
    dev: bool = False
    access_token_seconds: int = 900
    refresh_token_days: int = 30
    magic_link_seconds: int = 900
    magic_links_per_email_per_hour: int = 5
    magic_links_per_ip_per_hour: int = 30
