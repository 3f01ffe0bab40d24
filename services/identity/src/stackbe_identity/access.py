"""Who may call what: the caller's scope checked against an endpoint's needs."""

from __future__ import annotations

from stackbe_common.access import app_of, tenant_of
from stackbe_common.scope import Scope

from .errors import DashboardTokenRequired

__all__ = ["app_of", "member_of", "tenant_of"]


def member_of(caller: Scope) -> tuple[str, str]:
    """(tenant id, member id) for endpoints that need a dashboard token."""
    if caller.principal.kind != "member" or not caller.principal.id or not caller.tenant_id:
        raise DashboardTokenRequired()
    return caller.tenant_id, caller.principal.id
