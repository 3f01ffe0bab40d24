"""Events produced by the identity service (stream ``STACKBE_IDENTITY``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from .base import Event, register

__all__ = [
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "AppArchived",
    "AppCreated",
    "AppUpdated",
    "CustomerCreated",
    "CustomerUpdated",
    "MemberAdded",
    "MemberRemoved",
    "MemberSignedOut",
    "MemberUpdated",
    "TenantCreated",
]

Role = Literal["owner", "admin", "viewer"]
KeyKind = Literal["tenant", "app"]


@register("stackbe.identity.tenant.created.v1")
class TenantCreated(Event, frozen=True, kw_only=True):
    name: str
    owner_email: str


@register("stackbe.identity.member.added.v1")
class MemberAdded(Event, frozen=True, kw_only=True):
    member_id: str
    email: str
    role: Role


@register("stackbe.identity.member.updated.v1")
class MemberUpdated(Event, frozen=True, kw_only=True):
    member_id: str
    role: Role


@register("stackbe.identity.member.removed.v1")
class MemberRemoved(Event, frozen=True, kw_only=True):
    member_id: str


@register("stackbe.identity.member.signed_out.v1")
class MemberSignedOut(Event, frozen=True, kw_only=True):
    """A dashboard session ended (logout, or a reused refresh token revoked it): its
    access tokens stop working at once, not only when they expire."""

    member_id: str
    session_id: str


@register("stackbe.identity.app.created.v1")
class AppCreated(Event, frozen=True, kw_only=True):
    name: str
    grace_period_days: int
    gateway: str  # "sandbox" or "stripe"
    gateway_id: str | None = None  # the tenant's connection (gw_...) when not the sandbox
    brand_color: str | None = None  # hosted pages' accent, #rrggbb
    logo_url: str | None = None  # an https URL
    allowed_redirect_urls: list[str] = []  # where hosted pages may send a customer back
    portal_pause_enabled: bool = False  # customers may pause and resume in the portal


@register("stackbe.identity.app.updated.v1")
class AppUpdated(Event, frozen=True, kw_only=True):
    name: str
    grace_period_days: int
    gateway: str  # "sandbox" or "stripe"
    gateway_id: str | None = None  # the tenant's connection (gw_...) when not the sandbox
    brand_color: str | None = None  # hosted pages' accent, #rrggbb
    logo_url: str | None = None  # an https URL
    allowed_redirect_urls: list[str] = []  # where hosted pages may send a customer back
    portal_pause_enabled: bool = False  # customers may pause and resume in the portal


@register("stackbe.identity.app.archived.v1")
class AppArchived(Event, frozen=True, kw_only=True):
    archived_at: datetime


@register("stackbe.identity.api_key.created.v1")
class ApiKeyCreated(Event, frozen=True, kw_only=True):
    key_id: str
    kind: KeyKind
    name: str
    hint: str
    expires_at: datetime | None = None


@register("stackbe.identity.api_key.revoked.v1")
class ApiKeyRevoked(Event, frozen=True, kw_only=True):
    """A key stopped working; gateways drop it from their caches at once."""

    key_id: str
    kind: KeyKind
    key_hash: str


class _CustomerState(Event, frozen=True, kw_only=True):
    """The whole customer, so consumers need no call back."""

    customer_id: str
    email: str
    name: str | None = None
    external_id: str | None = None
    metadata: dict[str, str | int | float | bool | None] = {}


@register("stackbe.identity.customer.created.v1")
class CustomerCreated(_CustomerState, frozen=True, kw_only=True):
    pass


@register("stackbe.identity.customer.updated.v1")
class CustomerUpdated(_CustomerState, frozen=True, kw_only=True):
    pass
