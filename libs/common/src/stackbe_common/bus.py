"""NATS connection, JetStream streams, and the request-reply helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import SlowConsumerError
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import APIError, NotFoundError

from stackbe_events import rpc, stream_for
from stackbe_events.catalog import Plan

from .errors import Unavailable
from .logging import get_logger
from .stopping import Stopping

__all__ = [
    "NATS",
    "JetStreamContext",
    "PlanSource",
    "RemoteError",
    "Responder",
    "RpcError",
    "StreamPolicy",
    "StreamRefused",
    "answer_until_stopped",
    "connect",
    "ensure_stream",
    "ensure_streams",
    "plan_source",
    "request",
]

log = get_logger(__name__)

T = TypeVar("T")

DUPLICATE_WINDOW_SECONDS = 120.0


async def connect(
    url: str,
    name: str,
    *,
    client: NATS | None = None,
    on_reconnect: Callable[[], None] | None = None,
    on_lost_messages: Callable[[], None] | None = None,
) -> NATS:
    """Connect and keep reconnecting for ever; JetStream work resumes on reconnect.

    ``on_reconnect`` runs after each reconnection and ``on_lost_messages`` when the server
    dropped messages for a slow subscriber: in-memory caches fed by NATS flush on both.
    Pass ``client`` when callbacks must be wired to the client before it connects.
    """
    nc = client or NATS()

    async def on_disconnect() -> None:
        log.warning("nats.disconnected")

    async def reconnected() -> None:
        log.info("nats.reconnected")
        if on_reconnect is not None:
            on_reconnect()

    async def on_error(exc: Exception) -> None:
        if isinstance(exc, SlowConsumerError) and on_lost_messages is not None:
            on_lost_messages()
        log.warning("nats.error", error=repr(exc))

    await nc.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # annotated int, takes seconds
        drain_timeout=5,  # a stopping process waits this long at most for its subscriptions
        disconnected_cb=on_disconnect,
        reconnected_cb=reconnected,
        error_cb=on_error,
    )
    return nc


class StreamPolicy(msgspec.Struct, frozen=True):
    """How a new stream is made (``STACKBE_STREAM_REPLICAS``, ``STACKBE_STREAM_MAX_AGE_DAYS``).
    An existing stream is left as it is: operators change it with ``nats stream edit``."""

    replicas: int = 1
    max_age_days: float = 0  # 0: events are kept until deleted (projections replay them)


async def ensure_stream(
    js: JetStreamContext, context: str, policy: StreamPolicy | None = None
) -> str:
    """Create ``STACKBE_<CONTEXT>`` unless it exists, with de-duplication on
    ``Nats-Msg-Id``; a stream NATS refuses to make stops the process with NATS' reason."""
    policy = policy or StreamPolicy()
    name, subjects = stream_for(context)
    config = StreamConfig(
        name=name,
        subjects=[subjects],
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=policy.replicas,
        max_age=policy.max_age_days * 86_400 or None,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream.created", stream=name, replicas=policy.replicas)
        except APIError as exc:
            try:
                await js.stream_info(name)  # created meanwhile by another process
            except NotFoundError:
                raise StreamRefused(f"NATS would not create {name}: {exc.description}") from exc
    return name


async def ensure_streams(js: JetStreamContext, policy: StreamPolicy, *contexts: str) -> None:
    for context in contexts:
        await ensure_stream(js, context, policy)


class StreamRefused(Exception):
    """NATS refused to create a stream (replicas above the cluster's size, say)."""


class RpcError(msgspec.Struct):
    code: str
    message: str
    status: int = 500


class _Reply(msgspec.Struct):
    ok: bool
    data: msgspec.Raw = msgspec.Raw(b"null")
    error: RpcError | None = None


class Responder:
    """Answers one request-reply subject in a queue group shared by a service's replicas.

    nats-py runs a subscription's callback for one message at a time, so each request is
    answered in a task of its own; at most ``concurrency`` run at once, and past that the
    subscription waits, which pushes back on the callers.
    """

    def __init__(
        self,
        nc: NATS,
        subject: str,
        queue: str,
        handler: Callable[[bytes], Awaitable[msgspec.Struct | None]],
        concurrency: int = 64,
    ) -> None:
        self._nc, self._subject, self._queue, self._handler = nc, subject, queue, handler
        self._sub: Subscription | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._subject, queue=self._queue, cb=self._on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_msg(self, msg: Msg) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _answer(self, msg: Msg) -> None:
        try:
            result = await self._handler(msg.data)
            reply = _Reply(ok=True, data=msgspec.Raw(msgspec.json.encode(result)))
        except Exception as exc:  # the caller gets an error reply, never a hang
            code = getattr(exc, "code", "INTERNAL_ERROR")
            if code == "INTERNAL_ERROR":
                log.exception("rpc.failed", subject=self._subject)
            reply = _Reply(ok=False, error=RpcError(code=code, message=str(exc)))
        await msg.respond(msgspec.json.encode(reply))


class RemoteError(Exception):
    def __init__(self, error: RpcError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


async def answer_until_stopped(stopping: Stopping, *responders: Responder) -> None:
    """Answer until stopping is asked; then unsubscribe, so that other replicas take the
    questions, and finish the answers in flight before the connection drains."""
    for responder in responders:
        await responder.start()
    try:
        await stopping.wait()
    finally:
        for responder in responders:
            await responder.stop()


async def request(
    nc: NATS, subject: str, payload: msgspec.Struct, result_type: type[T], timeout: float = 2.0
) -> T:
    """Ask a responder and decode its answer; raises ``RemoteError`` for an error reply."""
    msg = await nc.request(subject, msgspec.json.encode(payload), timeout=timeout)
    reply = msgspec.json.decode(msg.data, type=_Reply)
    if not reply.ok:
        raise RemoteError(reply.error or RpcError(code="INTERNAL_ERROR", message="no error"))
    return msgspec.json.decode(reply.data, type=result_type)


PlanSource = Callable[[str, str, str], Awaitable[Plan | None]]


def plan_source(nc: NATS, timeout: float) -> PlanSource:
    """Ask the catalog for a plan whose event has not reached this service yet:
    ``fetch(tenant_id, app_id, plan_id)``; ``Unavailable`` when it does not answer (the
    consumer retries the event)."""
    answer_type: Any = Plan | None

    async def fetch(tenant_id: str, app_id: str, plan_id: str) -> Plan | None:
        q = rpc.GetPlan(tenant_id=tenant_id, app_id=app_id, plan_id=plan_id)
        try:
            answer: Plan | None = await request(nc, rpc.GET_PLAN, q, answer_type, timeout)
        except Exception as exc:
            raise Unavailable("The catalog did not answer for a plan") from exc
        return answer

    return fetch
