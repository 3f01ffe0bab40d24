from __future__ import annotations

import subprocess
import sys

import msgspec
import pytest

from stackbe_common.config import ConfigError, load


class Settings(msgspec.Struct, frozen=True):
    database_url: str
    pool_size: int = 5
    log_json: bool = True


def test_config_reads_prefixed_variables_and_coerces_types():
    settings = load(
        Settings,
        {
            "STACKBE_DATABASE_URL": "postgresql://x",
            "STACKBE_POOL_SIZE": "9",
            "STACKBE_LOG_JSON": "false",
        },
    )
    assert settings == Settings(database_url="postgresql://x", pool_size=9, log_json=False)


def test_config_names_a_missing_variable():
    with pytest.raises(ConfigError, match="STACKBE_DATABASE_URL"):
        load(Settings, {})


def test_config_rejects_a_value_of_the_wrong_type():
    with pytest.raises(ConfigError, match="pool_size"):
        load(Settings, {"STACKBE_DATABASE_URL": "x", "STACKBE_POOL_SIZE": "many"})


def test_a_missing_variable_stops_the_process_with_one_line():
    code = (
        "import msgspec\n"
        "from stackbe_common.config import load_or_exit\n"
        "class S(msgspec.Struct):\n    database_url: str\n"
        "load_or_exit(S, {})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "stackbe: missing environment variable STACKBE_DATABASE_URL"


def test_the_secret_scan_knows_each_kind_of_secret_and_not_their_masked_forms():
    from stackbe_common.apikeys import APP_PREFIX, TENANT_PREFIX, generate_key
    from stackbe_common.testing.leaks import found_in

    assert found_in(f"key={generate_key(TENANT_PREFIX)}") == ["API key"]
    assert found_in(f"key={generate_key(APP_PREFIX)}") == ["API key"]
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJtZW1feCJ9." + "s" * 40
    assert found_in(f"Bearer {jwt}") == ["access or session token (JWT)"]
    assert found_in("sk_test_51Habcdefghij") == ["Stripe key"]
    assert found_in("whsec_" + "k" * 32) == ["webhook secret"]
    for masked in (
        "sbt_8RFG…2bgU4j",
        "sk_test_***",
        "Invalid API Key provided: sk_live_…",
        "whsec_…",
    ):
        assert found_in(masked) == [], masked
