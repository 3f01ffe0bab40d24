"""Bases and field types shared by every service's request and response bodies.

Bodies are camelCase JSON. Requests refuse unknown fields, so a typo is a 400 naming it
rather than a silently ignored value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import msgspec
from msgspec import Meta

__all__ = ["Input", "Moment", "Name", "Output", "Text"]

# Text that Postgres can store (no NUL) and that is not only white space.
Name: TypeAlias = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")
]
# Free text of up to 2,000 characters, without NUL.
Text: TypeAlias = Annotated[str, Meta(max_length=2000, pattern=r"^[^\x00]*$")]
Moment: TypeAlias = Annotated[datetime, Meta(tz=True)]  # ISO 8601 time with its offset


class Input(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Base of every request body."""


class Output(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of every response body."""
