"""``python -m bench.receiver PORT``: the local webhook receiver of ``make bench``.

It answers every POST with 204 at once and remembers, per ``webhook-id``, when it first
arrived and the event's ``timestamp``; ``GET /stats`` returns what it saw, ``DELETE
/stats`` forgets it. A separate process, so the bench's own load does not slow it.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

_event = msgspec.json.Decoder(dict[str, Any])


class Seen:
    def __init__(self) -> None:
        self.first: dict[str, tuple[float, float | None]] = {}  # id -> (arrived, sent)
        self.posts = 0

    async def post(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.posts += 1
        message = request.headers.get("webhook-id")
        if message and message not in self.first:
            sent = None
            try:
                stamp = _event.decode(body).get("timestamp")
                sent = datetime.fromisoformat(stamp).timestamp() if stamp else None
            except (msgspec.DecodeError, ValueError, TypeError):
                pass
            self.first[message] = (time.time(), sent)
        return web.Response(status=204)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"posts": self.posts, "first": {k: list(v) for k, v in self.first.items()}}
        )

    async def forget(self, request: web.Request) -> web.Response:
        self.first.clear()
        self.posts = 0
        return web.Response(status=204)


def main() -> None:
    seen = Seen()
    app = web.Application()
    app.router.add_post("/{tail:.*}", seen.post)
    app.router.add_get("/stats", seen.stats)
    app.router.add_delete("/stats", seen.forget)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
