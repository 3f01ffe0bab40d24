"""What a plan grants: validated entitlements, kept exactly as the app wrote them.

Keys start with a letter and hold letters, digits and ``_`` (at most 64 characters); a
plan has at most 100. A value is one of:

- a boolean: a feature switched on or off;
- an integer: a limit, ``-1`` meaning unlimited (at most 2**53 - 1, which every JSON
  client reads exactly);
- a string of at most 500 characters: a setting such as a support tier;
- a list of up to 100 distinct strings of 1 to 200 characters: ``features`` is the list
  of feature names the plan turns on.

Anything else (a float, null, an object, a list holding other than strings) is a 400
naming ``entitlements.<key>``.
"""

from __future__ import annotations

import re
from typing import Any

from stackbe_common.errors import InvalidInput
from stackbe_events.catalog import EntitlementValue

__all__ = ["MAX_KEYS", "validate_entitlements"]

KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MAX_KEYS = 100
MAX_LIMIT = 2**53 - 1
MAX_TEXT = 500
MAX_ITEMS = 100
MAX_ITEM = 200
FEATURES = "features"

_TYPES = "a boolean, an integer (-1 for unlimited), a string or a list of strings"


def _text_ok(value: str, longest: int) -> bool:
    return len(value) <= longest and "\x00" not in value


def _check_list(field: str, value: list[Any]) -> list[str]:
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{field} lists {len(value)} items; at most {MAX_ITEMS}", field=field)
    for item in value:
        if not isinstance(item, str) or not item or not _text_ok(item, MAX_ITEM):
            raise InvalidInput(
                f"{field} must hold only strings of 1 to {MAX_ITEM} characters", field=field
            )
    if len(set(value)) != len(value):
        duplicate = next(item for item in value if value.count(item) > 1)
        raise InvalidInput(f"{field} lists {duplicate!r} more than once", field=field)
    return value


def _check_value(key: str, value: Any) -> EntitlementValue:
    field = f"entitlements.{key}"
    if key == FEATURES and not isinstance(value, list):
        raise InvalidInput(f"{field} must be a list of feature names", field=field)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -1 <= value <= MAX_LIMIT:
            raise InvalidInput(
                f"{field} must be -1 (unlimited) or a whole number from 0 to {MAX_LIMIT}",
                field=field,
            )
        return value
    if isinstance(value, str):
        if not _text_ok(value, MAX_TEXT):
            raise InvalidInput(
                f"{field} must be a string of at most {MAX_TEXT} characters, without NUL",
                field=field,
            )
        return value
    if isinstance(value, list):
        return _check_list(field, value)
    got = "null" if value is None else type(value).__name__.replace("dict", "object")
    raise InvalidInput(f"{field} must be {_TYPES}, not {got}", field=field)


def validate_entitlements(raw: Any) -> dict[str, EntitlementValue]:
    """The entitlements as given, in the given key order, or InvalidInput naming the field."""
    if not isinstance(raw, dict):
        raise InvalidInput("entitlements must be a JSON object", field="entitlements")
    if len(raw) > MAX_KEYS:
        raise InvalidInput(
            f"entitlements has {len(raw)} keys; a plan may have at most {MAX_KEYS}",
            field="entitlements",
        )
    checked: dict[str, EntitlementValue] = {}
    for key, value in raw.items():
        if not KEY.fullmatch(key):
            raise InvalidInput(
                f"entitlement key {key!r} must start with a letter and hold only letters, "
                "digits and _ (at most 64 characters)",
                field="entitlements",
            )
        checked[key] = _check_value(key, value)
    return checked
