"""List pagination: ``?limit=`` (1-100, default 20) and ``?startingAfter=<id>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import msgspec

from .errors import InvalidInput

__all__ = ["PageParams", "Page", "page_params", "make_page"]

T = TypeVar("T")

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
    return PageParams(limit=value, starting_after=starting_after or None)


def make_page(rows: Sequence[T], params: PageParams) -> Page[T]:
    """Rows were fetched with ``limit + 1`` to learn whether there are more."""
    return Page(data=list(rows[: params.limit]), has_more=len(rows) > params.limit)
