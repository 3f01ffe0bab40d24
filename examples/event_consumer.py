"""Consume StackBE events from NATS JetStream with your own durable consumer.

    pip install stackbe-events nats-py        # or: uv run, inside this repository
    python examples/event_consumer.py --stream identity --durable my-team

It prints each event as it arrives, decoded into its typed contract, and acknowledges
it. Run it again with the same --durable and it resumes where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio

import msgspec
import nats
from nats.errors import TimeoutError as FetchTimeout

import stackbe_events


async def consume(url: str, context: str, durable: str, max_messages: int | None) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    stream, subjects = stackbe_events.stream_for(context)
    sub = await js.pull_subscribe(subjects, durable=durable, stream=stream)
    seen = 0
    try:
        while max_messages is None or seen < max_messages:
            try:
                messages = await sub.fetch(10, timeout=5)
            except FetchTimeout:
                continue
            for msg in messages:
                try:
                    event = stackbe_events.decode(msg.subject, msg.data)
                except (stackbe_events.UnknownSubject, msgspec.DecodeError):
                    # A newer StackBE may publish subjects this version does not know yet.
                    await msg.ack()
                    continue
                print(f"{msg.subject} {msgspec.json.encode(event).decode()}", flush=True)
                await msg.ack()
                seen += 1
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream", default="identity", choices=stackbe_events.CONTEXTS)
    parser.add_argument("--durable", default="example-consumer")
    parser.add_argument("--max-messages", type=int, default=None)
    args = parser.parse_args()
    asyncio.run(consume(args.nats, args.stream, args.durable, args.max_messages))


if __name__ == "__main__":
    main()
