"""The fake Stripe API speaks to the official SDK as Stripe does: keys are checked, calls
are recorded, and its event signatures verify with the SDK's own verifier."""

from __future__ import annotations

import json

import pytest
import stripe

from stackbe_common.testing.fake_stripe import FakeStripe, parse_form, signature

stripe.enable_telemetry = False


def _client(fake: FakeStripe, key: str, http: stripe.AIOHTTPClient) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": fake.url}, http_client=http)


async def test_the_sdk_reads_the_account_of_a_valid_key_and_is_refused_a_bad_one() -> None:
    http = stripe.AIOHTTPClient()
    try:
        async with FakeStripe() as fake:
            account = fake.account_for("sk_test_good")

            found = await _client(fake, "sk_test_good", http).v1.accounts.retrieve_current_async()
            with pytest.raises(stripe.AuthenticationError):
                await _client(fake, "sk_test_bad", http).v1.accounts.retrieve_current_async()

        assert found.id == account
        assert [(c.method, c.path) for c in fake.calls] == [("GET", "/v1/account")] * 2
        assert fake.calls[0].headers["Authorization"] == "Bearer sk_test_good"
    finally:
        await http.close_async()


def test_events_signed_by_the_fake_verify_with_the_sdk_and_tampering_fails() -> None:
    body = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {}})
    header = signature(body, "whsec_test")

    event = stripe.Webhook.construct_event(body, header, "whsec_test")

    assert event.type == "invoice.paid"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace("paid", "void"), header, "whsec_test")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, "whsec_other")


def test_stripe_form_encoding_is_read_back_as_nested_parameters() -> None:
    body = "mode=subscription&line_items[0][price]=price_1&metadata[app]=app_1&x="

    assert parse_form(body) == {
        "mode": "subscription",
        "line_items": {"0": {"price": "price_1"}},
        "metadata": {"app": "app_1"},
        "x": "",
    }
