"""HTTP routes of the subscriptions service. Each maps a request to one service call."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from stackbe_common.access import app_of
from stackbe_common.errors import StackBEError
from stackbe_common.pages import csrf_valid
from stackbe_common.pagination import Page, page_params
from stackbe_common.web import Caller, Conn, Json, Uow, parse
from stackbe_events.subscriptions import Payment, Subscription

from . import checkout, gateways, metrics, sandbox, stripe_events, subscriptions
from . import schemas as s
from .deps import Deps

Limit = Annotated[int | None, QueryParameter(name="limit")]
After = Annotated[str | None, QueryParameter(name="startingAfter")]
CustomerFilter = Annotated[str | None, QueryParameter(name="customerId")]
SubscriptionFilter = Annotated[str | None, QueryParameter(name="subscriptionId")]
DepsT = NamedDependency[Deps]


# Checkout


@post("/v1/checkout/session", status_code=201, summary="Start a checkout for a plan")
async def create_checkout(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateCheckoutSession]
) -> s.CheckoutSession:
    body = parse(data, s.CreateCheckoutSession)
    return await checkout.create_session(conn, deps, caller, body)


@get("/v1/checkout/session/{session_id:str}", summary="Get a checkout session")
async def get_checkout(
    conn: Conn, deps: DepsT, caller: Caller, session_id: FromPath[str]
) -> s.CheckoutSession:
    return await checkout.get_session(conn, deps, caller, session_id)


# Subscriptions


@post("/v1/subscriptions", status_code=201, summary="Subscribe a customer to a free plan")
async def create_subscription(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.CreateSubscription]
) -> Subscription:
    body = parse(data, s.CreateSubscription)
    return await checkout.start_free(conn, deps, caller, body)


@get("/v1/subscriptions", summary="List subscriptions, by customer and status")
async def list_subscriptions(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    customer_id: CustomerFilter = None,
    status: FromQuery[str | None] = None,
) -> Page[Subscription]:
    params = page_params(limit, starting_after)
    return await subscriptions.list_subscriptions(conn, caller, params, customer_id, status)


@get("/v1/subscriptions/current", summary="A customer's live subscription")
async def current_subscription(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    customer_id: Annotated[str, QueryParameter(name="customerId")],
    expand: FromQuery[str | None] = None,
) -> s.SubscriptionWithPlan:
    return await subscriptions.current(conn, deps, caller, customer_id, expand)


@get("/v1/subscriptions/{subscription_id:str}", summary="Get a subscription")
async def get_subscription(
    conn: Conn, caller: Caller, subscription_id: FromPath[str]
) -> Subscription:
    return await subscriptions.get(conn, caller, subscription_id)


@post("/v1/subscriptions/{subscription_id:str}/cancel", status_code=200, summary="Cancel")
async def cancel_subscription(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    subscription_id: FromPath[str],
    data: Json[s.CancelSubscription | None] = None,
) -> Subscription:
    body = parse(data or {}, s.CancelSubscription)
    return await subscriptions.cancel(conn, deps, caller, subscription_id, body)


@post(
    "/v1/subscriptions/{subscription_id:str}/reactivate",
    status_code=200,
    summary="Undo a cancel at period end",
)
async def reactivate_subscription(
    conn: Conn, deps: DepsT, caller: Caller, subscription_id: FromPath[str]
) -> Subscription:
    return await subscriptions.reactivate(conn, deps, caller, subscription_id)


@post("/v1/subscriptions/{subscription_id:str}/pause", status_code=200, summary="Pause")
async def pause_subscription(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    subscription_id: FromPath[str],
    data: Json[s.PauseSubscription | None] = None,
) -> Subscription:
    body = parse(data or {}, s.PauseSubscription)
    return await subscriptions.pause(conn, deps, caller, subscription_id, body)


@post("/v1/subscriptions/{subscription_id:str}/resume", status_code=200, summary="Resume")
async def resume_subscription(
    conn: Conn, deps: DepsT, caller: Caller, subscription_id: FromPath[str]
) -> Subscription:
    return await subscriptions.resume(conn, deps, caller, subscription_id)


@post(
    "/v1/subscriptions/{subscription_id:str}/change-plan",
    status_code=200,
    summary="Move to another plan (upgrade now with proration, downgrade at period end)",
)
async def change_plan(
    conn: Conn,
    deps: DepsT,
    uow: Uow,
    caller: Caller,
    subscription_id: FromPath[str],
    data: Json[s.ChangePlan],
) -> Subscription:
    body = parse(data, s.ChangePlan)
    return await subscriptions.change_plan(conn, deps, uow, caller, subscription_id, body)


@get("/v1/payments", summary="List payments, by subscription")
async def list_payments(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    subscription_id: SubscriptionFilter = None,
) -> Page[Payment]:
    params = page_params(limit, starting_after)
    return await subscriptions.list_payments(conn, caller, params, subscription_id)


@get("/v1/metrics", summary="MRR, subscriptions by status, new and churned, per app")
async def get_metrics(conn: Conn, caller: Caller) -> s.Metrics:
    return await metrics.metrics(conn, caller)


# Sandbox gateway


@post(
    "/v1/sandbox/checkout/{session_id:str}/complete",
    status_code=200,
    summary="Complete a checkout without a browser",
)
async def complete_checkout(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    session_id: FromPath[str],
    data: Json[s.CompleteCheckout | None] = None,
) -> s.CompletedCheckout:
    body = parse(data or {}, s.CompleteCheckout)
    return await checkout.complete(conn, deps, session_id, app_of(caller, write=True), body.outcome)


@post(
    "/v1/sandbox/customers/{customer_id:str}/payment-behavior",
    status_code=200,
    summary="Make the customer's later charges succeed or fail",
)
async def payment_behavior(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    customer_id: FromPath[str],
    data: Json[s.PaymentBehavior],
) -> s.CustomerBehavior:
    body = parse(data, s.PaymentBehavior)
    return await sandbox.set_behavior(conn, deps, caller, customer_id, body)


@get("/v1/sandbox/clock", summary="The app's test clock")
async def get_clock(conn: Conn, deps: DepsT, caller: Caller) -> s.Clock:
    return await sandbox.get_clock(conn, deps, caller)


@post(
    "/v1/sandbox/clock/advance",
    status_code=200,
    summary="Move the test clock forward, running every transition due up to then",
)
async def advance_clock(
    conn: Conn, deps: DepsT, caller: Caller, data: Json[s.AdvanceClock]
) -> s.Clock:
    body = parse(data, s.AdvanceClock)
    return await sandbox.advance_clock(conn, deps, caller, body)


# Payment gateway connections (tenant scope), and Stripe's events in (public, signed)


@post("/v1/gateways/stripe", status_code=201, summary="Connect a Stripe account")
async def connect_stripe(
    uow: Uow, deps: DepsT, caller: Caller, data: Json[s.ConnectStripe]
) -> s.Gateway:
    body = parse(data, s.ConnectStripe)
    return await gateways.connect_stripe(uow, deps, caller, body)


@get("/v1/gateways", summary="List the tenant's payment gateway connections")
async def list_gateways(
    conn: Conn, caller: Caller, limit: Limit = None, starting_after: After = None
) -> Page[s.Gateway]:
    return await gateways.list_gateways(conn, caller, page_params(limit, starting_after))


@delete(
    "/v1/gateways/{gateway_id:str}",
    status_code=200,
    summary="Delete a connection no app uses",
)
async def delete_gateway(
    conn: Conn, deps: DepsT, caller: Caller, gateway_id: FromPath[str]
) -> s.Gateway:
    return await gateways.delete(conn, deps, caller, gateway_id)


@post(
    "/v1/gateways/stripe/{gateway_id:str}/webhook",
    status_code=200,
    summary="Stripe's events for this connection (signed with its webhook secret)",
)
async def stripe_webhook(
    conn: Conn, deps: DepsT, request: Request[Any, Any, Any], gateway_id: FromPath[str]
) -> s.StripeEventTaken:
    body = await request.body()
    header = request.headers.get("stripe-signature")
    return await stripe_events.take(conn, deps, gateway_id, body, header)


# The hosted checkout page (public: the session id is the capability)


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(
        body, status_code=status, media_type="text/html", headers={"Cache-Control": "no-store"}
    )


@get("/checkout/{session_id:str}", include_in_schema=False)
async def checkout_page(conn: Conn, deps: DepsT, session_id: FromPath[str]) -> Response[Any]:
    try:
        session = await checkout.session_row(conn, session_id, None)
    except StackBEError as exc:
        return _html(sandbox.result_page("Checkout not found", exc.message), 404)
    if session["url"]:  # Stripe's page takes the payment
        return Response(None, status_code=303, headers={"Location": session["url"]})
    return _html(await sandbox.checkout_page(conn, deps, session))


@get("/checkout/{session_id:str}/cancel", include_in_schema=False)
async def checkout_canceled(conn: Conn, deps: DepsT, session_id: FromPath[str]) -> Response[Any]:
    try:
        session = await checkout.session_row(conn, session_id, None)
    except StackBEError as exc:
        return _html(sandbox.result_page("Checkout not found", exc.message), 404)
    if session["status"] == "completed":  # paid after all: its page says so
        return Response(None, status_code=303, headers={"Location": f"/checkout/{session_id}"})
    brand = await sandbox.brand_of(conn, deps, session)
    return _html(sandbox.canceled_page(session, brand))


@post("/checkout/{session_id:str}", include_in_schema=False, status_code=303)
async def pay_checkout(
    conn: Conn,
    deps: DepsT,
    uow: Uow,
    request: Request[Any, Any, Any],
    session_id: FromPath[str],
) -> Response[Any]:
    form = await request.form()
    given = form.get("csrf")
    token = given if isinstance(given, str) else None
    if not csrf_valid(deps.settings.secret, sandbox.CSRF_PURPOSE, session_id, token):
        refused = "The form has expired or did not come from this page. Reload it and try again."
        return _html(sandbox.result_page("Payment not completed", refused), 403)
    try:
        done = await checkout.complete(conn, deps, session_id, None, None)
    except StackBEError as exc:
        return _html(sandbox.result_page("Payment not completed", exc.message), 409)
    if done.subscription.status in ("active", "trialing"):
        return Response(None, status_code=303, headers={"Location": done.success_url})
    uow.commit_even_on_error()  # the declined payment and the incomplete subscription stay
    failed = "The payment was declined and nothing was charged. You can try again."
    page = sandbox.result_page("Payment declined", failed, f"/checkout/{session_id}", "Try again")
    return _html(page, 402)


ROUTES: list[Any] = [
    create_subscription,
    create_checkout,
    get_checkout,
    list_subscriptions,
    current_subscription,
    get_subscription,
    cancel_subscription,
    reactivate_subscription,
    pause_subscription,
    resume_subscription,
    change_plan,
    list_payments,
    get_metrics,
    complete_checkout,
    payment_behavior,
    get_clock,
    advance_clock,
    connect_stripe,
    list_gateways,
    delete_gateway,
    stripe_webhook,
    checkout_page,
    checkout_canceled,
    pay_checkout,
]
