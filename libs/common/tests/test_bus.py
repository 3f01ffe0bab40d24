from __future__ import annotations

import asyncio
import secrets

import msgspec
import pytest

from stackbe_common.bus import Responder, StreamPolicy, StreamRefused, ensure_stream, request


async def test_a_responder_answers_requests_concurrently(nc):
    class Ask(msgspec.Struct):
        n: int

    class Answer(msgspec.Struct):
        n: int

    running, peak = 0, 0

    async def slow(data: bytes) -> Answer:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.2)
        running -= 1
        return Answer(n=msgspec.json.decode(data, type=Ask).n)

    subject = f"stackbe.rpc.test.{secrets.token_hex(4)}"
    responder = Responder(nc, subject, "test", slow)
    await responder.start()
    try:
        answers = await asyncio.gather(*(request(nc, subject, Ask(n=i), Answer) for i in range(10)))
    finally:
        await responder.stop()
    assert [a.n for a in answers] == list(range(10))
    assert peak == 10


async def test_streams_are_made_by_the_policy_and_a_refusal_says_why(js):
    context = f"policy{secrets.token_hex(3)}"
    name = await ensure_stream(js, context, StreamPolicy(max_age_days=7))
    try:
        info = await js.stream_info(name)
        assert (info.config.num_replicas, info.config.max_age) == (1, 7 * 86_400)
        assert info.config.duplicate_window == 120
        # Existing: left as it is, whatever the policy now says.
        assert await ensure_stream(js, context, StreamPolicy(max_age_days=1)) == name
        assert (await js.stream_info(name)).config.max_age == 7 * 86_400
    finally:
        await js.delete_stream(name)
    # One NATS server cannot keep three replicas: the reason, not a later mystery.
    with pytest.raises(StreamRefused, match="NATS would not create STACKBE_"):
        await ensure_stream(js, f"three{secrets.token_hex(3)}", StreamPolicy(replicas=3))
