"""List pagination: ``?limit=`` (1-100, default 20) and ``?startingAfter=<id>``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec

from .errors import InvalidInput

__all__ = ["Page", "PageParams", "make_page", "page_of", "page_params"]

T = TypeVar("T")

_ID = re.compile(r"^[a-z]{2,8}_[0-9a-z]{26}$")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageParams(msgspec.Struct, frozen=True):
    limit: int
    starting_after: str | None


class Page(msgspec.Struct, Generic[T], rename="camel"):
    data: list[T]
    has_more: bool


def page_params(limit: str | int | None, starting_after: str | None) -> PageParams:
    if limit is None:
        value = DEFAULT_LIMIT
    else:
        try:
            value = int(limit)
        except ValueError:
            raise InvalidInput("limit must be an integer from 1 to 100", field="limit") from None
        if not 1 <= value <= MAX_LIMIT:
            raise InvalidInput("limit must be an integer from 1 to 100", field="limit")
    if starting_after and not _ID.match(starting_after):
        raise InvalidInput(
            "startingAfter must be an id from a previous page", field="startingAfter"
        )
    return PageParams(limit=value, starting_after=starting_after or None)


def make_page(rows: Sequence[T], params: PageParams) -> Page[T]:
    """Rows were fetched with ``limit + 1`` to learn whether there are more."""
    return Page(data=list(rows[: params.limit]), has_more=len(rows) > params.limit)


def page_of(rows: Sequence[Any], params: PageParams, convert: Callable[[Any], T]) -> Page[T]:
    """``make_page`` over rows converted to their response type."""
    return make_page([convert(row) for row in rows], params)
