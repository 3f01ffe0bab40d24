"""Entitlements settings, read once from ``STACKBE_*`` variables."""

from __future__ import annotations

from stackbe_common.service import ServiceSettings


class EntitlementsSettings(ServiceSettings, frozen=True, kw_only=True):
    rpc_timeout_seconds: float = 2.0
