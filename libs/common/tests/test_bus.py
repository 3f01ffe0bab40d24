from __future__ import annotations

import asyncio
import secrets

import msgspec

from stackbe_common.bus import Responder, request


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
