"""A real SMTP server (aiosmtpd) for tests, keeping every message it receives."""

from __future__ import annotations

import asyncio
import email
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from ..infra import free_port

__all__ = ["Mailbox", "smtp_server", "token_in"]

logging.getLogger("mail.log").setLevel(logging.WARNING)

_CONFIRM = re.compile(r"https?://\S+/confirm\?token=(\S+)")


class Mailbox:
    """What the server received; ``port`` is where it listens on 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, to: str, timeout: float = 10.0, *, after: int = 0) -> Message:
        """The newest message to ``to`` once more than ``after`` have arrived for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            received = self.to(to)
            if len(received) > after:
                return received[-1]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no mail to {to} within {timeout}s")
            await asyncio.sleep(0.02)


def token_in(message: Message) -> str:
    """The token of the confirmation link in a sign-in message."""
    payload = message.get_payload(decode=True)
    body = payload.decode() if isinstance(payload, bytes) else str(payload)
    match = _CONFIRM.search(body)
    assert match, body
    return match.group(1)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox(free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
