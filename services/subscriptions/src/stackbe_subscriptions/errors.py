"""Conditions the subscriptions service reports; statuses come from their kinds at the edge.

A refused transition is a 409 whose code names what stands in the way.
"""

from __future__ import annotations

from stackbe_common.errors import Conflict, GatewayFailed, InvalidInput, NotFound


class CustomerNotFound(NotFound):
    code = "CUSTOMER_NOT_FOUND"
    default_message = "Customer not found"


class PlanNotFound(NotFound):
    code = "PLAN_NOT_FOUND"
    default_message = "Plan not found"


class SubscriptionNotFound(NotFound):
    code = "SUBSCRIPTION_NOT_FOUND"
    default_message = "Subscription not found"


class CheckoutNotFound(NotFound):
    code = "CHECKOUT_SESSION_NOT_FOUND"
    default_message = "Checkout session not found"


class NoActiveSubscription(NotFound):
    code = "NO_ACTIVE_SUBSCRIPTION"
    default_message = "The customer has no live subscription in this app"


class PlanDeprecated(Conflict):
    code = "PLAN_DEPRECATED"
    default_message = "The plan is deprecated and takes no new subscriptions"


class SubscriptionExists(Conflict):
    code = "SUBSCRIPTION_EXISTS"
    default_message = "The customer already has a live subscription in this app"


class CheckoutExpired(Conflict):
    code = "CHECKOUT_SESSION_EXPIRED"
    default_message = "The checkout session has expired; create a new one"


class SubscriptionCanceled(Conflict):
    code = "SUBSCRIPTION_CANCELED"
    default_message = "The subscription is canceled; start a new one with a checkout"


class SubscriptionIncomplete(Conflict):
    code = "SUBSCRIPTION_INCOMPLETE"
    default_message = "The subscription's first payment has not succeeded"


class SubscriptionPastDue(Conflict):
    code = "SUBSCRIPTION_PAST_DUE"
    default_message = "The subscription has a payment due"


class SubscriptionPaused(Conflict):
    code = "SUBSCRIPTION_PAUSED"
    default_message = "The subscription is paused"


class SubscriptionNotPaused(Conflict):
    code = "SUBSCRIPTION_NOT_PAUSED"
    default_message = "Only a paused subscription can be resumed"


class SubscriptionCanceling(Conflict):
    code = "SUBSCRIPTION_CANCELING"
    default_message = (
        "The subscription is set to cancel at period end; reactivate it before pausing"
    )


class SubscriptionNotCanceling(Conflict):
    code = "SUBSCRIPTION_NOT_CANCELING"
    default_message = "The subscription is not set to cancel at period end"


class SamePlan(Conflict):
    code = "SAME_PLAN"
    default_message = "The subscription is already on this plan"


class CurrencyMismatch(Conflict):
    code = "CURRENCY_MISMATCH"
    default_message = "A subscription cannot move to a plan in another currency"


class PaymentFailedError(Conflict):
    code = "PAYMENT_FAILED"
    default_message = "The payment failed; nothing changed but the recorded failed payment"


class PaidPlanNeedsCheckout(InvalidInput):
    code = "VALIDATION_ERROR"
    default_message = "Only a free plan can start without a checkout"


class ClockNotAvailable(Conflict):
    code = "SANDBOX_ONLY"
    default_message = "Test clocks and sandbox payments exist only for apps on the sandbox gateway"


class ClockTooFar(InvalidInput):
    default_message = "A test clock moves at most five years at a time"


class PaymentDeclined(Conflict):
    code = "PAYMENT_DECLINED"
    default_message = (
        "The payment was declined; the customer's free plan stays as it was. Try again "
        "with another payment method"
    )


class GatewayNotFound(NotFound):
    code = "NOT_FOUND"
    default_message = "Payment gateway connection not found"


class GatewayInUse(Conflict):
    code = "GATEWAY_IN_USE"
    default_message = "An app uses this connection; move the app off it first"


class StripeFailed(GatewayFailed):
    default_message = "Stripe did not complete the request; try again"


class SignatureInvalid(InvalidInput):
    default_message = "The Stripe-Signature header does not match the body"
