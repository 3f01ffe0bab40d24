"""Who may call what: the caller's scope checked against an endpoint's needs."""

from __future__ import annotations

from stackbe_common.access import ReadOnlyRole, app_of
from stackbe_common.scope import Scope

from .errors import DashboardTokenRequired, NotSignedIn, TenantCredentialRequired

__all__ = ["app_of", "member_of", "tenant_of"]

TENANT_PRINCIPALS = frozenset({"tenant_key", "member"})


def tenant_of(caller: Scope, *, write: bool = False) -> str:
    """The caller's tenant, for endpoints that take a tenant key or a dashboard token."""
    if caller.is_anonymous or caller.tenant_id is None:
        raise NotSignedIn()
    if caller.principal.kind not in TENANT_PRINCIPALS:
        raise TenantCredentialRequired()
    if write and caller.role == "viewer":
        raise ReadOnlyRole()
    return caller.tenant_id


def member_of(caller: Scope) -> tuple[str, str]:
    """(tenant id, member id) for endpoints that need a dashboard token."""
    if caller.principal.kind != "member" or not caller.principal.id or not caller.tenant_id:
        raise DashboardTokenRequired()
    return caller.tenant_id, caller.principal.id
