"""Conditions the identity service reports; statuses come from their kinds at the edge."""

from __future__ import annotations

from stackbe_common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class TenantNotFound(NotFound):
    default_message = "Tenant not found"


class MemberNotFound(NotFound):
    default_message = "Member not found"


class ApiKeyNotFound(NotFound):
    default_message = "API key not found"


class MemberExists(Conflict):
    code = "MEMBER_EXISTS"
    default_message = "A member with this email already belongs to the tenant"


class LastOwner(Conflict):
    code = "LAST_OWNER"
    default_message = "The last owner of a tenant cannot be removed or demoted"


class AppArchived(Conflict):
    code = "APP_ARCHIVED"
    default_message = "The app is archived"


class DashboardTokenRequired(Unauthorized):
    default_message = "This endpoint needs a dashboard access token"


class OwnerRoleRequired(Forbidden):
    default_message = "Only an owner may grant or change the owner role"


class SignupClosed(Forbidden):
    default_message = "Sign-up is closed on this StackBE instance; use a platform key"


class TokenInvalid(Unauthorized):
    code = "TOKEN_INVALID"
    default_message = "The token is not valid"


class TokenAlreadyUsed(Unauthorized):
    code = "TOKEN_ALREADY_USED"
    default_message = "The token was already used"


class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"
    default_message = "Customer not found"


class CustomerExists(Conflict):
    code = "CUSTOMER_EXISTS"
    default_message = "A customer with this email or externalId already exists in the app"


class SessionInvalid(Unauthorized):
    code = "SESSION_INVALID"
    default_message = "This endpoint needs a customer session of this app"


class RedirectNotAllowed(InvalidInput):
    default_message = "redirectUrl is not one of the app's allowedRedirectUrls"

    def __init__(self) -> None:
        super().__init__(field="redirectUrl")
