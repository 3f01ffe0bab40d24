"""The suite-wide scan of responses (``stackbe_common.testing.leaks.ResponseScan``): a
secret may be shown once, in the response that made it and its idempotent replays."""

from __future__ import annotations

import secrets
import textwrap

import httpx
import pytest

from stackbe_common.apikeys import APP_PREFIX, generate_key
from stackbe_common.testing.leaks import ResponseScan

pytest_plugins = ["pytester"]

KEY = generate_key(APP_PREFIX)
OTHER = generate_key(APP_PREFIX)


def _exchange(
    method: str, path: str, shown: str, *, key: str | None = None, bearer: str | None = None
) -> tuple[httpx.Request, httpx.Response]:
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = key
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    request = httpx.Request(method, f"http://api.test{path}", headers=headers, json={})
    response = httpx.Response(200, json={"key": shown}, request=request)
    response.read()
    return request, response


def _found(*exchanges: tuple[httpx.Request, httpx.Response]) -> list[str]:
    scan = ResponseScan()
    for request, response in exchanges:
        scan.check(request, response)
    return scan.found


def test_a_secret_shown_once_or_replayed_under_its_key_passes() -> None:
    assert _found(_exchange("POST", "/v1/keys", KEY)) == []
    made = _exchange("POST", "/v1/keys", KEY, key="k1")
    assert _found(made, _exchange("POST", "/v1/keys", KEY, key="k1")) == []
    masked = KEY[:8] + "…" + KEY[-4:]
    assert _found(made, _exchange("GET", "/v1/keys", masked)) == []


def test_a_secret_shown_twice_is_found_naming_both_requests_not_the_secret() -> None:
    made = _exchange("POST", "/v1/keys", KEY, key="k1")
    found = _found(made, _exchange("GET", "/v1/keys/key_1", KEY))
    assert found == ["GET /v1/keys/key_1 showed a API key already shown by POST /v1/keys"]
    assert KEY not in found[0]
    # Twice without a key is not a replay; another key is another request.
    assert _found(_exchange("POST", "/v1/keys", KEY), _exchange("POST", "/v1/keys", KEY))
    assert _found(made, _exchange("POST", "/v1/keys", KEY, key="k2"))


def test_a_secret_sent_back_to_its_sender_is_found() -> None:
    found = _found(_exchange("GET", "/v1/me", KEY, bearer=KEY))
    assert found == ["GET /v1/me answered with the API key it was sent"]


def test_a_replay_for_another_credential_is_not_a_replay() -> None:
    made = _exchange("POST", "/v1/keys", KEY, key="k1", bearer="one")
    assert _found(made, _exchange("POST", "/v1/keys", KEY, key="k1", bearer="one")) == []
    assert _found(made, _exchange("POST", "/v1/keys", KEY, key="k1", bearer="two"))


def _json(
    method: str, path: str, sent: object, answer: object
) -> tuple[httpx.Request, httpx.Response]:
    request = httpx.Request(method, f"http://api.test{path}", json=sent)
    response = httpx.Response(200, json=answer, request=request)
    response.read()
    return request, response


def test_refresh_tokens_and_one_time_tokens_are_known_by_their_fields() -> None:
    refresh = secrets.token_urlsafe(32)
    issued = _json("POST", "/v1/auth/verify", {"token": "t"}, {"refreshToken": refresh})
    assert _found(issued) == []
    # The same refresh token in another field of another response is still found.
    again = _json("GET", "/v1/auth/me", {}, {"note": f"was {refresh}"})
    assert _found(issued, again) == [
        "GET /v1/auth/me showed a refresh token already shown by POST /v1/auth/verify"
    ]
    one_time = secrets.token_urlsafe(32)
    echoed = _json("POST", "/v1/auth/verify", {"token": one_time}, {"hint": one_time})
    assert _found(echoed) == ["POST /v1/auth/verify answered with the one-time token it was sent"]


def test_redirects_followed_and_streamed_headers_are_read() -> None:
    first = httpx.Request("POST", "http://api.test/v1/keys")
    hop = httpx.Response(303, headers={"location": "/v1/keys/1", "x-key": KEY}, request=first)
    final_request = httpx.Request("GET", "http://api.test/v1/keys/1")
    final = httpx.Response(200, json={"key": KEY}, request=final_request, history=[hop])
    final.read()
    assert _found((final_request, final)) == [
        "GET /v1/keys/1 showed a API key already shown by POST /v1/keys"
    ]
    streamed_request = httpx.Request("GET", "http://api.test/v1/stream")
    streamed = httpx.Response(
        200, headers={"x-key": OTHER}, stream=httpx.ByteStream(b"..."), request=streamed_request
    )
    scan = ResponseScan()
    scan.check(streamed_request, streamed)
    scan.check(streamed_request, streamed)
    assert scan.found == ["GET /v1/stream showed a API key already shown by GET /v1/stream"]


def test_the_scan_fails_a_test_whose_client_is_shown_a_secret_twice(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_shown_twice=textwrap.dedent(
            f"""
            import httpx

            KEY = "{KEY}"

            def answer(request):
                return httpx.Response(200, json={{"key": KEY}})

            def answer_other(request):
                return httpx.Response(200, json={{"key": "{OTHER}"}})

            async def test_shown_twice():
                transport = httpx.MockTransport(answer)
                async with httpx.AsyncClient(transport=transport) as client:
                    assert (await client.post("http://api.test/v1/keys")).status_code == 200
                    assert (await client.get("http://api.test/v1/keys/1")).status_code == 200

            def test_shown_once():
                with httpx.Client(transport=httpx.MockTransport(answer_other)) as client:
                    assert client.post("http://api.test/v1/keys").status_code == 200
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "stackbe_common.testing.plugin",
        "-p",
        "no:randomly",
        "-p",
        "asyncio",
        "--asyncio-mode=auto",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*secrets in responses:*", "*GET /v1/keys/1 showed a API key already shown by POST*"]
    )
    assert KEY not in result.stdout.str() and OTHER not in result.stdout.str()
