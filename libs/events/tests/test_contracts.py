from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import stackbe_events
from stackbe_events import REGISTRY, UnknownSubject, decode, encode
from stackbe_events.schema import render, snapshot_path

SUBJECTS = sorted(s for s in REGISTRY if s.split(".")[1] in stackbe_events.CONTEXTS)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_every_event_schema_matches_its_committed_snapshot(subject: str):
    path = snapshot_path(subject)
    assert path.exists(), "no snapshot: run python -m stackbe_events.schema --write"
    assert render(subject) == path.read_text(), (
        f"{subject} changed: additive changes with defaults only within a version, "
        "then refresh with python -m stackbe_events.schema --write"
    )


@pytest.mark.parametrize("subject", SUBJECTS)
def test_subjects_follow_the_naming_rule(subject: str):
    prefix, context, entity, verb, version = subject.split(".", 4)
    assert prefix == "stackbe" and context in stackbe_events.CONTEXTS
    assert entity and verb and version.startswith("v") and version[1:].isdigit()


def test_events_round_trip_in_camel_case():
    event = stackbe_events.ApiKeyRevoked(
        id="evt_1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        tenant_id="ten_1",
        app_id="app_1",
        key_id="key_1",
        kind="app",
        key_hash="ab" * 32,
    )
    data = encode(event)
    assert json.loads(data)["keyHash"] == "ab" * 32
    assert decode(event.subject, data) == event


def test_decoding_an_unknown_subject_or_bad_payload_fails_clearly():
    with pytest.raises(UnknownSubject):
        decode("stackbe.identity.nothing.v1", b"{}")
    with pytest.raises(msgspec.ValidationError):
        decode(stackbe_events.TenantCreated.subject, b'{"id": 1}')


def test_events_library_imports_only_msgspec_and_the_standard_library():
    code = (
        "import sys, stackbe_events\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
        " - set(sys.stdlib_module_names))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # typing_extensions is a dependency of msgspec itself.
    allowed = {"__main__", "msgspec", "typing_extensions", "stackbe_events", "_distutils_hack"}
    assert set(out.stdout.split()) <= allowed


def test_the_events_page_lists_every_subject():
    page = (Path(__file__).parents[3] / "docs" / "events.md").read_text()
    missing = [s for s in SUBJECTS if f"`{s}`" not in page]
    assert missing == []


def test_request_reply_subjects_stay_outside_every_event_stream():
    from stackbe_events import rpc

    subjects = [
        v
        for k, v in vars(rpc).items()
        if k.isupper() and isinstance(v, str) and v.startswith("stackbe.")
    ]
    assert subjects
    for subject in subjects:
        for context in stackbe_events.CONTEXTS:
            assert not subject.startswith(f"stackbe.{context}."), subject
