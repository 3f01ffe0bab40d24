"""JSON Schemas of every event contract, and their committed snapshots.

``python -m stackbe_events.schema --write`` refreshes the snapshots in ``schemas/`` after
an additive change; a test fails when the code and the snapshots disagree.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from .base import REGISTRY

SNAPSHOTS = Path(str(resources.files("stackbe_events") / "schemas"))


def schema_of(subject: str) -> dict[str, Any]:
    return msgspec.json.schema(REGISTRY[subject])


def render(subject: str) -> str:
    return json.dumps(schema_of(subject), indent=2, sort_keys=True) + "\n"


def snapshot_path(subject: str) -> Path:
    return SNAPSHOTS / f"{subject}.json"


def write_snapshots() -> list[str]:
    SNAPSHOTS.mkdir(exist_ok=True)
    written = []
    for subject in sorted(REGISTRY):
        snapshot_path(subject).write_text(render(subject))
        written.append(subject)
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        for subject in write_snapshots():
            print(f"wrote {snapshot_path(subject)}")
    else:
        for subject in sorted(REGISTRY):
            print(subject)
