"""Who may call what: the caller's scope checked against an endpoint's needs."""

from __future__ import annotations

from stackbe_common.scope import Scope

from .errors import (
    AppCredentialRequired,
    DashboardTokenRequired,
    NotSignedIn,
    ReadOnlyRole,
    TenantCredentialRequired,
)

TENANT_PRINCIPALS = frozenset({"tenant_key", "member"})
APP_PRINCIPALS = frozenset({"app_key", "tenant_key", "member"})


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


def app_of(caller: Scope, *, write: bool = False) -> tuple[str, str]:
    """(tenant id, app id) for app-level endpoints: an app key, or a tenant credential that
    named the app in ``X-StackBE-App`` (the gateway checked it belongs to the tenant)."""
    if caller.tenant_id is None or caller.app_id is None:
        raise AppCredentialRequired()
    if caller.principal.kind not in APP_PRINCIPALS:  # a customer's session is not the app's
        raise AppCredentialRequired()
    if write and caller.role == "viewer":
        raise ReadOnlyRole()
    return caller.tenant_id, caller.app_id
