"""``metadata``: a flat JSON object an API user attaches to an object (as in Stripe).

At most 50 keys, keys of 1 to 40 characters, values that are strings of at most 500
characters, numbers, booleans or null; no nested objects or lists. Enforced by the type,
so a violation is a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, TypeAlias

from msgspec import Meta

__all__ = ["Metadata"]

_Key = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[^\x00]*$")]
_Value = Annotated[str, Meta(max_length=500, pattern=r"^[^\x00]*$")] | int | float | bool | None

Metadata: TypeAlias = Annotated[dict[_Key, _Value], Meta(max_length=50)]
