"""The suite-wide secret scans, registered by the test plugin for every run.

- **Output** (``LeakScan``): every line any test's code, service or process wrote (the
  output pytest captured for each test, platforms' logs included) is searched for
  credentials. One found fails the run, naming the test and the kind of secret (never the
  secret itself).
- **Responses** (``ResponseScan``): every response a test's httpx client receives (the
  in-process test clients and the end-to-end tests' clients of the gateway; every
  redirect followed; a streamed response's headers) is searched too, for the same
  secrets and for refresh tokens. A secret may be shown once: in the response that made
  it, and in that response's idempotent replays (the same method, path,
  ``Idempotency-Key`` and credential). Shown by any other response, or sent back to the
  client that sent it (a one-time sign-in token included), it fails the test phase,
  naming both requests and the kind of secret.

  What is remembered is each test worker's (under xdist, a secret shown by tests on two
  workers is not compared). Not read: the one test that speaks aiohttp
  (``services/gateway/tests/test_process.py``), pages a real browser loads, and the
  answers schemathesis receives in its own process.

Tests that show a secret on purpose (to prove that a scan catches it) say so with
``@pytest.mark.prints_a_secret``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator
from typing import Any

import httpx
import pytest

__all__ = ["SECRETS", "LeakScan", "ResponseScan", "found_in"]

SECRETS = {
    "API key": re.compile(r"\bsb[ta]_[A-Za-z0-9]{30,}"),
    "access or session token (JWT)": re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"
    ),
    "Stripe key": re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{8,}"),
    "webhook secret": re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]{16,}"),
}


def found_in(text: str) -> list[str]:
    """The kinds of secret ``text`` holds."""
    return [kind for kind, pattern in SECRETS.items() if pattern.search(text)]


def _secrets(text: str) -> dict[str, str]:
    """Each secret in ``text``, with its kind."""
    return {
        match.group(0): kind
        for kind, pattern in SECRETS.items()
        for match in pattern.finditer(text)
    }


def _text(headers: httpx.Headers, content: bytes) -> str:
    head = "\n".join(f"{k}: {v}" for k, v in headers.multi_items())
    return head + "\n\n" + content.decode("utf-8", "replace")


# Secrets with no form of their own (256 random bits, base64url), known by the JSON field
# that carries them: shown in a response, or sent by a client (one-time sign-in tokens).
_SHOWN_FIELDS = ("refreshToken",)
_SENT_FIELDS = ("token", "refreshToken")
_CANDIDATE = re.compile(r"[A-Za-z0-9_-]{40,}")


def _fields(body: bytes, names: tuple[str, ...]) -> list[str]:
    """The long string values of ``names`` anywhere in a JSON body."""
    if not body or body[:1] not in (b"{", b"["):
        return []
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or a hostile test's deep nesting
        return []
    found: list[str] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in names and isinstance(value, str) and len(value) >= 40:
                    found.append(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, dict | list))
    return found


def _body(request: httpx.Request) -> bytes:
    try:
        return request.content
    except httpx.RequestNotRead:  # streamed and not read: nothing to compare
        return b""


class LeakScan:
    def __init__(self) -> None:
        self.leaks: list[str] = []
        self.scanned = 0

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "prints_a_secret" in report.keywords:
            return
        for title, text in report.sections:
            self.scanned += 1
            for kind in found_in(text):
                self.leaks.append(f"{report.nodeid} ({title}): a {kind}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput") or not self.leaks:
            return  # xdist workers send their reports on: the controller decides
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("secrets in captured output", sep="!")
            for leak in sorted(set(self.leaks)):
                reporter.line(leak)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class ResponseScan:
    """Wraps httpx's clients' ``send`` for the session and checks each response they
    return; see the module's docstring."""

    def __init__(self) -> None:
        # secret -> (method, path, Idempotency-Key, credential) of its first showing
        self._shown: dict[str, tuple[str, str, str | None, str | None]] = {}
        # secrets without a recognisable form, learnt from the fields that carry them
        self._unprefixed: dict[str, str] = {}
        self._found: list[str] = []
        self._scanned = 0
        self.total = 0
        self._originals: dict[Any, Any] = {}

    @property
    def found(self) -> list[str]:
        """What was found since the last test phase reported (never the secrets)."""
        return list(self._found)

    def install(self) -> None:
        scan = self
        async_send = self._originals[httpx.AsyncClient] = httpx.AsyncClient.send
        sync_send = self._originals[httpx.Client] = httpx.Client.send

        async def send_async(
            client: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any
        ) -> httpx.Response:
            response = await async_send(client, request, *args, **kwargs)
            scan.check(request, response)
            return response

        def send_sync(
            client: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any
        ) -> httpx.Response:
            response = sync_send(client, request, *args, **kwargs)
            scan.check(request, response)
            return response

        httpx.AsyncClient.send = send_async  # type: ignore[method-assign,assignment]
        httpx.Client.send = send_sync  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        for cls, original in self._originals.items():
            cls.send = original
        self._originals.clear()

    def check(self, request: httpx.Request, response: httpx.Response) -> None:
        for hop in (*response.history, response):  # each redirect followed, then the answer
            self._check(hop.request, hop)

    def _check(self, request: httpx.Request, response: httpx.Response) -> None:
        self._scanned += 1
        body = response.content if response.is_closed else b""  # streamed: headers only
        received = _text(response.headers, body)
        sent_body = _body(request)
        sent = f"{request.url}\n{_text(request.headers, sent_body)}"
        where = f"{request.method} {request.url.path}"
        for value in _fields(sent_body, _SENT_FIELDS):
            if value in received:
                self._found.append(f"{where} answered with the one-time token it was sent")
        shown = _secrets(received)
        for field in _fields(body, _SHOWN_FIELDS):
            self._unprefixed[field] = shown[field] = "refresh token"
        for candidate in _CANDIDATE.findall(received):  # a refresh token anywhere else
            if candidate in self._unprefixed:
                shown.setdefault(candidate, self._unprefixed[candidate])
        # A replay is the same request again: same method, path, key and credential.
        here = (
            request.method,
            request.url.path,
            request.headers.get("idempotency-key"),
            request.headers.get("authorization"),
        )
        for secret, kind in shown.items():
            if secret in sent:
                self._found.append(f"{where} answered with the {kind} it was sent")
                continue
            first = self._shown.setdefault(secret, here)
            if first is here:
                continue  # its first showing
            if first != here or here[2] is None:  # not an idempotent replay
                earlier = f"{first[0]} {first[1]}"
                self._found.append(f"{where} showed a {kind} already shown by {earlier}")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        found, self._found = self._found, []
        if found and report.passed and "prints_a_secret" not in item.keywords:
            report.outcome = "failed"
            report.longrepr = "secrets in responses:\n" + "\n".join(sorted(set(found)))
        if call.when == "teardown":
            report.user_properties.append(("responses_scanned", self._scanned))
            self._scanned = 0

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            counts = [v for k, v in report.user_properties if k == "responses_scanned"]
            self.total += sum(v for v in counts if isinstance(v, int))

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.total and not os.environ.get("PYTEST_XDIST_WORKER"):
            terminalreporter.write_line(f"secret scan: {self.total} responses checked")
