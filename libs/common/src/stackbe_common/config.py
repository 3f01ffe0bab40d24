"""Settings as frozen msgspec Structs, read from the environment once, in ``__main__``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

__all__ = ["ConfigError", "load", "load_or_exit"]

T = TypeVar("T", bound=msgspec.Struct)

PREFIX = "STACKBE_"


class ConfigError(Exception):
    """A required setting is missing or has the wrong form."""


def load(cls: type[T], environ: Mapping[str, str] | None = None, prefix: str = PREFIX) -> T:
    """Build ``cls`` from ``<prefix><FIELD_NAME>`` variables; fields with defaults are optional."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = prefix + field.name.upper()
        if name in env:
            values[field.name] = env[name]
        elif field.required:
            raise ConfigError(f"missing environment variable {name}")
    try:
        return msgspec.convert(values, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid environment variable: {exc}") from exc


def load_or_exit(cls: type[T], environ: Mapping[str, str] | None = None) -> T:
    """Load settings, or stop the process with one line naming what is wrong."""
    try:
        return load(cls, environ)
    except ConfigError as exc:
        print(f"stackbe: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
