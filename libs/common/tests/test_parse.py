"""``parse``: strict request bodies whose errors name the field a client wrote."""

from __future__ import annotations

import pytest

from stackbe_common.errors import InvalidInput
from stackbe_common.fields import Input
from stackbe_common.metadata import Metadata
from stackbe_common.web import parse


class Settings(Input, frozen=True):
    labels: Metadata = {}


class Body(Input, frozen=True):
    name: str
    seats: int = 1
    metadata: Metadata = {}
    settings: Settings | None = None


def refusal(raw: object) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        parse(raw, Body)
    return raised.value


def test_a_good_body_is_decoded():
    body = parse({"name": "a", "metadata": {"k": 1}}, Body)
    assert body == Body(name="a", metadata={"k": 1})


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ({"seats": 1}, "name", "missing required field"),
        ({"name": "a", "seats": "2"}, "seats", "Expected `int`"),
        ({"name": "a", "seats": 2.0}, "seats", "Expected `int`"),
        ({"name": "a", "nmae": "b"}, "nmae", "unknown field"),
        ({"name": "a", "metadata": {"ok": 1, "long": "x" * 501}}, "metadata.long", "length"),
        ({"name": "a", "metadata": {"deep": {"x": 1}}}, "metadata.deep", "Expected"),
        ({"name": "a", "metadata": {"k" * 41: 1}}, "metadata", "(in a key)"),
        (
            {"name": "a", "settings": {"labels": {"fine": "y", "bad": [1]}}},
            "settings.labels.bad",
            "Expected",
        ),
    ],
)
def test_a_refusal_names_the_field_down_to_an_objects_key(raw, field, says):
    error = refusal(raw)
    assert error.field == field
    assert says in error.message and "[...]" not in error.message
    assert error.message.endswith(f"at `{field}`")


def test_a_body_that_is_not_an_object_says_so():
    error = refusal(["name"])
    assert (error.field, error.message) == (None, "Request body must be a JSON object")
