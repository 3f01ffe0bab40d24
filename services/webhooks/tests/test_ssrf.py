"""SSRF: with no allowed networks (the production default) an endpoint may only point at
public addresses, when it is saved and again when each delivery connects."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from stackbe_common.ids import new_id
from stackbe_webhooks.app import create_app
from stackbe_webhooks.delivery import DeliveryWorker
from stackbe_webhooks.ssrf import AddressRefused, Guard, GuardedResolver, parse_networks

from .conftest import Api, App, make_settings

EP = "/v1/webhooks/endpoints"
LOOP = "127.0.0.0/8"


@pytest.fixture(scope="module")
async def strict_api(wh_database_url, wh_nats_url, internal_secret, pool):
    """The webhooks app as production runs it: no network allowed beyond public ones."""
    settings = make_settings(
        wh_database_url, wh_nats_url, internal_secret, webhook_allowed_networks=""
    )
    assert settings.webhook_allowed_networks == ""
    async with AsyncTestClient(create_app(settings)) as client:
        yield Api(client, internal_secret)


@pytest.fixture
async def apps(pool):
    """Makes apps on an API; their endpoints and deliveries go afterwards."""
    made: list[App] = []

    def make(api: Api) -> App:
        made.append(App(pool, api, tenant_id=new_id("ten")))
        return made[-1]

    yield make
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM endpoints WHERE app_id = ANY ($1)", [a.id for a in made])


@pytest.fixture
def strict(apps, strict_api) -> App:
    return apps(strict_api)


@pytest.fixture
def app(apps, api) -> App:
    """An app on the usual test API, which allows loopback."""
    return apps(api)


async def stored(pool, app: App) -> int:
    async with pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM endpoints WHERE app_id = $1", app.id)


def refused_url(r) -> str:
    assert r.status_code == 400, r.text
    body = r.json()
    assert (body["statusCode"], body["error"]) == (400, "Bad Request"), body
    assert (body["code"], body["field"]) == ("VALIDATION_ERROR", "url"), body
    return body["message"]


REFUSED = [
    pytest.param("http://10.0.0.1/hook", id="private-10"),
    pytest.param("http://172.16.5.4/hook", id="private-172.16"),
    pytest.param("http://192.168.1.1/hook", id="private-192.168"),
    pytest.param("http://127.0.0.1:8080/hook", id="loopback"),
    pytest.param("http://[::1]/hook", id="loopback-v6"),
    pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
    pytest.param("http://169.254.1.1/hook", id="link-local"),
    pytest.param("http://[fe80::1]/hook", id="link-local-v6"),
    pytest.param("http://[fc00::1]/hook", id="unique-local-v6"),
    pytest.param("http://100.64.0.1/hook", id="shared-100.64"),
    pytest.param("http://0.0.0.0/hook", id="unspecified"),
    pytest.param("http://224.0.0.1/hook", id="multicast"),
    pytest.param("http://[::ffff:127.0.0.1]/hook", id="ipv4-mapped-loopback"),
    pytest.param("https://localhost/hook", id="name-resolving-to-loopback"),
]


@pytest.mark.parametrize("url", REFUSED)
async def test_an_endpoint_at_a_non_public_address_is_refused_and_not_created(strict, pool, url):
    r = await strict.api.call("POST", EP, strict.key(), json={"url": url})
    message = refused_url(r)
    assert "public addresses only" in message
    assert await strict.api.ok("GET", EP, strict.key()) == {"data": [], "hasMore": False}
    assert await stored(pool, strict) == 0


async def test_an_endpoint_whose_name_does_not_resolve_is_refused(strict, pool):
    url = "https://no-such-host.invalid/hook"
    r = await strict.api.call("POST", EP, strict.key(), json={"url": url})
    assert "no-such-host.invalid does not resolve" in refused_url(r)
    assert await stored(pool, strict) == 0


async def test_a_public_address_is_accepted_by_the_same_app(strict, pool):
    made = await strict.endpoint("http://93.184.216.34/hook")  # nothing is ever sent there
    assert made["status"] == "enabled" and await stored(pool, strict) == 1


async def test_moving_an_endpoint_to_a_private_address_is_refused(strict, pool):
    made = await strict.endpoint("https://[2606:4700::1111]/hook")
    path = f"{EP}/{made['id']}"
    for url in ("http://127.0.0.1/hook", "http://169.254.169.254/", "http://localhost/"):
        r = await strict.api.call("PATCH", path, strict.key(), json={"url": url})
        refused_url(r)
        got = await strict.api.ok("GET", path, strict.key())
        assert (got["url"], got["updatedAt"]) == (made["url"], made["updatedAt"])


# The guard itself.


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111"])
async def test_the_guard_permits_public_addresses(address):
    guard = Guard()
    assert guard.permits(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    await guard.check_url(f"https://{host}/hook")  # no error


@pytest.mark.parametrize(
    "address",
    [
        *("10.0.0.1", "127.0.0.1", "::1", "169.254.169.254", "fe80::1", "fc00::1"),
        *("100.64.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"),
        "::ffff:10.0.0.1",
    ],
)
def test_the_guard_refuses_non_public_addresses_by_default(address):
    guard = Guard()
    assert not guard.permits(ipaddress.ip_address(address))
    with pytest.raises(AddressRefused, match="public addresses only"):
        guard.check_address("target", address)


async def test_an_allowed_network_lets_its_addresses_through_and_no_others():
    guard = Guard(parse_networks("127.0.0.0/8"))
    assert guard.permits(ipaddress.ip_address("127.0.0.1"))
    assert guard.permits(ipaddress.ip_address("::ffff:127.0.0.1"))  # judged as its IPv4
    assert not guard.permits(ipaddress.ip_address("10.0.0.1"))
    assert not guard.permits(ipaddress.ip_address("::1"))
    await guard.check_url("http://127.0.0.1:8080/hook")
    await guard.check_url("http://localhost/hook")
    with pytest.raises(AddressRefused):
        await guard.check_url("http://10.0.0.1/hook")
    with pytest.raises(AddressRefused):
        await Guard().check_url("http://127.0.0.1:8080/hook")


async def test_the_resolver_delivery_connects_through_refuses_what_the_guard_refuses():
    """A name is judged by what it resolves to as the connection is made (DNS rebinding)."""
    refusing, allowing = GuardedResolver(Guard()), GuardedResolver(Guard(parse_networks(LOOP)))
    try:
        with pytest.raises(AddressRefused, match=r"localhost is 127\.0\.0\.1"):
            await refusing.resolve("localhost", 80)
        [answer] = await allowing.resolve("localhost", 80)
        assert answer["host"] == "127.0.0.1"
    finally:
        await refusing.close()
        await allowing.close()


def test_parse_networks_reads_a_comma_separated_list():
    found = parse_networks(" 127.0.0.0/8, ::1/128 ,, 10.1.2.3/16")
    expected = ("127.0.0.0/8", "::1/128", "10.1.0.0/16")
    assert found == tuple(ipaddress.ip_network(n) for n in expected)
    assert parse_networks("") == () and parse_networks(" , ") == ()


@pytest.mark.parametrize("entry", ["garbage", "10.0.0.0/33", "300.1.1.1", "::1/129"])
def test_parse_networks_rejects_garbage_naming_the_entry(entry):
    with pytest.raises(ValueError, match="STACKBE_WEBHOOK_ALLOWED_NETWORKS") as caught:
        parse_networks(f"127.0.0.0/8, {entry}")
    assert repr(entry) in str(caught.value)


# At delivery time.


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_delivery_to_a_non_public_address_is_refused_when_it_connects(
    app, pool, settings, clock, receivers, worker, host
):
    receiver = await receivers()
    url = receiver.url.replace("127.0.0.1", host)
    endpoint = await app.endpoint(url)  # loopback allowed when it was saved
    event = await app.customer(clock=clock)
    nothing = msgspec.structs.replace(settings, webhook_allowed_networks="")
    async with DeliveryWorker(pool, settings.keyring, nothing, clock) as strict_worker:
        assert await strict_worker.deliver_due() >= 1
    assert receiver.received == []
    [attempt] = await app.attempts(event.id)
    assert attempt["endpointId"] == endpoint["id"] and attempt["responseStatus"] is None
    assert attempt["error"].startswith("refused"), attempt
    assert host in attempt["error"] and "public addresses only" in attempt["error"]
    [delivery] = (await app.message(event.id))["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)  # it will try again
    # The same delivery, by a worker that allows loopback, arrives: the guard refused it.
    clock.advance(timedelta(seconds=7))
    assert await worker.deliver_due() >= 1
    assert receiver.ids == [event.id]
