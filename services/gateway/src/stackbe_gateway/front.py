"""The gateway as served: forwarded paths go straight to the proxy, the rest to Litestar.

Every path of the route table is forwarded as it is, so Litestar's routing, middleware and
request objects would only add cost to the hot path (about a fifth of a check's time).
``Front`` hands such a request to ``proxy.Proxy`` itself and does the little Litestar did
for it: the ``X-Request-Id`` on the response, a 500 in the StackBE error body when
something unexpected fails, and the request metrics. The gateway's own endpoints
(``/health``, ``/ready``, ``/metrics``, ``/docs``, ``/openapi.json``), the lifespan, and
anything the route table does not hold go to the Litestar app, as before the gateway has
started.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar
from litestar.types import Message, Receive, Send
from prometheus_client import Counter, Histogram

from stackbe_common.errors import StackBEError
from stackbe_common.logging import get_logger

from .context import REQUEST_ID_HEADER, request_id
from .errors import send_error
from .proxy import Proxy, RouteTable

__all__ = ["REQUESTS", "REQUEST_SECONDS", "Front"]

log = get_logger(__name__)

REQUESTS = Counter(
    "stackbe_gateway_requests_total",
    "Requests on forwarded paths, by the status answered (the gateway's own refusals too)",
    ["status"],
)
REQUEST_SECONDS = Histogram(
    "stackbe_gateway_request_duration_seconds",
    "Time to answer a request on a forwarded path, from its arrival to its last byte",
)


class _Unexpected(StackBEError):
    status = 500
    default_message = "Internal error; quote the request id when reporting it"


class _Response:
    """A ``send`` that stamps ``X-Request-Id`` on the response start and notes its status."""

    __slots__ = ("rid", "send", "status")

    def __init__(self, send: Send, rid: str) -> None:
        self.send, self.rid = send, rid
        self.status = 0  # nothing sent yet

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            stamp = (REQUEST_ID_HEADER, self.rid.encode())
            message["headers"] = [*message.get("headers", ()), stamp]
        await self.send(message)


class Front:
    """The ASGI app granian serves; ``app`` is the Litestar app behind it."""

    def __init__(self, app: Litestar, table: RouteTable) -> None:
        self.app = app
        self._table = table
        self.proxy: Proxy | None = None  # set while the gateway runs (the lifespan)
        self._counted: dict[int, Any] = {}

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        proxy = self.proxy
        if proxy is None or scope["type"] != "http" or self._table.match(scope["path"]) is None:
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        response = _Response(send, request_id(scope))
        try:
            await proxy(scope, receive, response)
        except Exception:
            # As Litestar's handler of the unexpected would; once the response has started,
            # leaving it unfinished aborts the connection.
            log.exception("request.failed", path=scope["path"], request_id=response.rid)
            if response.status:
                raise
            await send_error(response, _Unexpected(), response.rid)
        finally:
            self._count(response.status or 500, time.perf_counter() - began)

    def _count(self, status: int, seconds: float) -> None:
        counter = self._counted.get(status)
        if counter is None:
            counter = self._counted[status] = REQUESTS.labels(str(status))
        counter.inc()
        REQUEST_SECONDS.observe(seconds)
