"""HTTP routes of the webhooks service. Each maps a request to one service call."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import delete, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from stackbe_common.pagination import Page, page_params
from stackbe_common.web import Caller, Conn, Json, parse

from . import endpoints, messages
from . import schemas as s
from .deps import Deps

Limit = Annotated[int | None, QueryParameter(name="limit")]
After = Annotated[str | None, QueryParameter(name="startingAfter")]
EndpointQ = Annotated[str | None, QueryParameter(name="endpointId")]
TypeQ = Annotated[s.EventType | None, QueryParameter(name="eventType")]
StatusQ = Annotated[s.DeliveryStatus | None, QueryParameter(name="status")]
DepsT = NamedDependency[Deps]
ENDPOINT = "/v1/webhooks/endpoints/{endpoint_id:str}"
MESSAGE = "/v1/webhooks/messages/{message_id:str}"


@post("/v1/webhooks/endpoints", status_code=201, summary="Add an endpoint (secret shown once)")
async def create_endpoint(
    conn: Conn, deps: DepsT, caller: Caller, state: State, data: Json[s.CreateEndpoint]
) -> s.Endpoint:
    body = parse(data, s.CreateEndpoint)
    nc = state.get("nc")  # None when tenant limits are off
    return await endpoints.create_endpoint(
        conn, nc, deps.clock, deps.keyring, deps.guard, caller, body
    )


@get("/v1/webhooks/endpoints", summary="List the app's endpoints")
async def list_endpoints(
    conn: Conn, caller: Caller, limit: Limit = None, starting_after: After = None
) -> Page[s.Endpoint]:
    return await endpoints.list_endpoints(conn, caller, page_params(limit, starting_after))


@get(ENDPOINT, summary="Get an endpoint")
async def get_endpoint(conn: Conn, caller: Caller, endpoint_id: FromPath[str]) -> s.Endpoint:
    return await endpoints.get_endpoint(conn, caller, endpoint_id)


@patch(ENDPOINT, summary="Change an endpoint's url, event types or description")
async def update_endpoint(
    conn: Conn,
    deps: DepsT,
    caller: Caller,
    endpoint_id: FromPath[str],
    data: Json[s.UpdateEndpoint],
) -> s.Endpoint:
    body = parse(data, s.UpdateEndpoint)
    return await endpoints.update_endpoint(conn, deps.clock, deps.guard, caller, endpoint_id, body)


@delete(ENDPOINT, status_code=200, summary="Delete an endpoint")
async def delete_endpoint(conn: Conn, caller: Caller, endpoint_id: FromPath[str]) -> s.Endpoint:
    return await endpoints.delete_endpoint(conn, caller, endpoint_id)


@post(ENDPOINT + "/rotate-secret", status_code=200, summary="New secret; the old signs 24 h more")
async def rotate_secret(
    conn: Conn, deps: DepsT, caller: Caller, endpoint_id: FromPath[str]
) -> s.Endpoint:
    return await endpoints.rotate_secret(conn, deps.clock, deps.keyring, caller, endpoint_id)


@post(ENDPOINT + "/enable", status_code=200, summary="Re-enable a disabled endpoint")
async def enable_endpoint(
    conn: Conn, deps: DepsT, caller: Caller, endpoint_id: FromPath[str]
) -> s.Endpoint:
    return await endpoints.enable_endpoint(conn, deps.clock, caller, endpoint_id)


@post(ENDPOINT + "/test", status_code=202, summary="Send a webhook.test event")
async def send_test(
    conn: Conn, deps: DepsT, caller: Caller, endpoint_id: FromPath[str]
) -> s.Message:
    message_id = await endpoints.send_test(conn, deps.clock, caller, endpoint_id)
    return await messages.get_message(conn, caller, message_id)


@post(ENDPOINT + "/recover", status_code=200, summary="Re-send every failed message since then")
async def recover(
    conn: Conn, deps: DepsT, caller: Caller, endpoint_id: FromPath[str], data: Json[s.Recover]
) -> s.Recovered:
    body = parse(data, s.Recover)
    return await messages.recover(conn, deps.clock, caller, endpoint_id, body.since)


@get("/v1/webhooks/messages", summary="Messages with their delivery status")
async def list_messages(
    conn: Conn,
    caller: Caller,
    limit: Limit = None,
    starting_after: After = None,
    endpoint_id: EndpointQ = None,
    event_type: TypeQ = None,
    status: StatusQ = None,
) -> Page[s.Message]:
    params = page_params(limit, starting_after)
    return await messages.list_messages(conn, caller, params, endpoint_id, event_type, status)


@get(MESSAGE, summary="A message with its deliveries")
async def get_message(conn: Conn, caller: Caller, message_id: FromPath[str]) -> s.Message:
    return await messages.get_message(conn, caller, message_id)


@get(MESSAGE + "/attempts", summary="Every attempt to deliver a message")
async def list_attempts(
    conn: Conn,
    caller: Caller,
    message_id: FromPath[str],
    limit: Limit = None,
    starting_after: After = None,
) -> Page[s.Attempt]:
    params = page_params(limit, starting_after)
    return await messages.attempts_of(conn, caller, message_id, params)


@post(MESSAGE + "/retry", status_code=202, summary="Send a message again")
async def retry_message(
    conn: Conn, deps: DepsT, caller: Caller, message_id: FromPath[str], data: Json[s.Retry]
) -> s.Message:
    body = parse(data, s.Retry)
    return await messages.retry_message(conn, deps.clock, caller, message_id, body)


ROUTES: list[Any] = [
    create_endpoint,
    list_endpoints,
    get_endpoint,
    update_endpoint,
    delete_endpoint,
    rotate_secret,
    enable_endpoint,
    send_test,
    recover,
    list_messages,
    get_message,
    list_attempts,
    retry_message,
]
