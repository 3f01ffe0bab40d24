"""Who may call an endpoint: the caller's scope checked against its needs.

A tenant-level endpoint takes a tenant key or a dashboard token (the viewer role reads).

An app key carries its app; a tenant credential (tenant key or dashboard token) reaches
an app only by naming it in ``X-StackBE-App``, which the gateway checked belongs to the
tenant. A customer's session token is never the app's credential.
"""

from __future__ import annotations

from .errors import Forbidden, Unauthorized
from .scope import Scope

__all__ = [
    "APP_PRINCIPALS",
    "TENANT_PRINCIPALS",
    "AppCredentialRequired",
    "NotSignedIn",
    "ReadOnlyRole",
    "TenantCredentialRequired",
    "app_of",
    "tenant_of",
]

APP_PRINCIPALS = frozenset({"app_key", "tenant_key", "member"})
TENANT_PRINCIPALS = frozenset({"tenant_key", "member"})


class NotSignedIn(Unauthorized):
    default_message = "This endpoint needs a tenant API key or a dashboard token"


class TenantCredentialRequired(Forbidden):
    default_message = "This endpoint needs a tenant API key or a dashboard token, not an app key"


class AppCredentialRequired(Unauthorized):
    default_message = "This endpoint needs an app key, or a tenant credential with X-StackBE-App"


class ReadOnlyRole(Forbidden):
    default_message = "The viewer role is read-only"


def app_of(caller: Scope, *, write: bool = False) -> tuple[str, str]:
    """(tenant id, app id) of an app-level caller; ``write`` refuses the viewer role."""
    if caller.tenant_id is None or caller.app_id is None:
        raise AppCredentialRequired()
    if caller.principal.kind not in APP_PRINCIPALS:
        raise AppCredentialRequired()
    if write and caller.role == "viewer":
        raise ReadOnlyRole()
    return caller.tenant_id, caller.app_id


def tenant_of(caller: Scope, *, write: bool = False) -> str:
    """The caller's tenant, for endpoints that take a tenant key or a dashboard token."""
    if caller.is_anonymous or caller.tenant_id is None:
        raise NotSignedIn()
    if caller.principal.kind not in TENANT_PRINCIPALS:
        raise TenantCredentialRequired()
    if write and caller.role == "viewer":
        raise ReadOnlyRole()
    return caller.tenant_id
