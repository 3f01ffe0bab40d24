"""Who may call an app-level endpoint: the caller's scope checked against its needs.

An app key carries its app; a tenant credential (tenant key or dashboard token) reaches
an app only by naming it in ``X-StackBE-App``, which the gateway checked belongs to the
tenant. A customer's session token is never the app's credential.
"""

from __future__ import annotations

from .errors import Forbidden, Unauthorized
from .scope import Scope

__all__ = ["APP_PRINCIPALS", "AppCredentialRequired", "ReadOnlyRole", "app_of"]

APP_PRINCIPALS = frozenset({"app_key", "tenant_key", "member"})


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
