from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import nats

import stackbe_events
from stackbe_events import TenantCreated

EXAMPLE = Path(__file__).parents[3] / "examples" / "event_consumer.py"


async def test_the_example_consumer_prints_typed_events_verbatim(nats_url: str):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subjects = stackbe_events.stream_for("identity")
    try:
        await js.add_stream(name=stream, subjects=[subjects])
    except Exception:
        pass  # already there
    event = TenantCreated(
        id=f"evt_{secrets.token_hex(8)}",
        occurred_at=datetime.now(UTC),
        tenant_id="ten_example",
        name="Example",
        owner_email="a@example.com",
    )
    durable = f"example_{secrets.token_hex(4)}"
    # A consumer created now starts at the beginning of the stream; start it, then publish.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--nats",
        nats_url,
        "--stream",
        "identity",
        "--durable",
        durable,
        "--max-messages",
        "1000000",  # the stream may hold many events from other tests before this one
        stdout=subprocess.PIPE,
    )
    await js.publish(event.subject, stackbe_events.encode(event), headers={"Nats-Msg-Id": event.id})
    try:
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "the example consumer exited before printing the event"
            subject, _, payload = line.partition(" ")
            if json.loads(payload)["id"] == event.id:
                break
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        await nc.close()
    assert subject == "stackbe.identity.tenant.created.v1"
    assert json.loads(payload)["ownerEmail"] == "a@example.com"
