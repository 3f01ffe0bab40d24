"""Payment gateway connections, as identity needs them: the subscriptions service owns
them, and is asked (NATS request-reply) before an app moves onto one."""

from __future__ import annotations

from typing import Any

import nats.errors

from stackbe_common import bus
from stackbe_common.errors import InvalidInput, Unavailable
from stackbe_events import rpc

from .deps import Deps

__all__ = ["find_gateway"]

RPC_SECONDS = 2.0


async def find_gateway(
    deps: Deps, tenant_id: str, gateway_id: str, app_id: str
) -> rpc.FoundGateway:
    """The tenant's connection, as the subscriptions service (its owner) knows it; it
    counts the app as a user of the connection from this question on."""
    q = rpc.GetGateway(tenant_id=tenant_id, gateway_id=gateway_id, app_id=app_id)
    nc = deps.billing.nc
    try:
        if nc is None:
            raise OSError("NATS is not connected")
        answer: Any = rpc.FoundGateway | None
        found: rpc.FoundGateway | None = await bus.request(
            nc, rpc.GET_GATEWAY, q, answer, timeout=RPC_SECONDS
        )
    except (nats.errors.Error, bus.RemoteError, OSError) as exc:
        raise Unavailable("Could not reach the service that keeps gateway connections") from exc
    if found is None:
        raise InvalidInput(
            "No payment gateway connection of the tenant has this id", field="gatewayId"
        )
    return found
