"""Service API keys: digests compared in constant time, `Bearer` in any case, blank key settings
refused, the caller name trusted only from gateway keys, keys never in logs or errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pydantic
import pytest
from gptoss.contract import CALLER_METADATA

from service.__main__ import main, warn_about_keys_in_argv
from service.auth import ApiKeys, bearer_token, key_identity, peer_host
from service.config import Settings


def test_bearer_scheme_is_case_insensitive() -> None:
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        assert bearer_token((("authorization", f"{scheme} k1"),)) == "k1"
    assert bearer_token((("authorization", "Basic k1"),)) == "" and bearer_token(None) == ""


def test_keys_are_kept_as_digests_and_matched_by_identity() -> None:
    keys = ApiKeys(["k1", "k2"], gateway_keys=["gw"])
    assert keys.match("k2") == (key_identity("k2"), False)
    assert keys.match("gw") == (key_identity("gw"), True)
    assert keys.match("k") is None and keys.match("") is None
    assert "k1" not in repr(keys.__dict__)  # digests only


def test_the_caller_is_the_gateway_named_one_only_for_gateway_keys() -> None:
    keys = ApiKeys(["user"], gateway_keys=["gw"])
    named = ((CALLER_METADATA, "key-enduser"),)
    assert keys.caller((("authorization", "Bearer gw"), *named), "ipv4:10.0.0.9:1234") == "key-enduser"
    assert keys.caller((("authorization", "Bearer gw"),), "ipv4:10.0.0.9:1") == key_identity("gw")
    assert keys.caller((("authorization", "Bearer user"), *named), "ipv4:10.0.0.9:1") == key_identity("user")
    bad_name = ((CALLER_METADATA, "x" * 500),)
    assert keys.caller((("authorization", "Bearer gw"), *bad_name), "ipv4:1.2.3.4:5") == key_identity("gw")
    # Without keys: the peer's host (every connection of a host is one caller).
    assert ApiKeys([]).caller(named, "ipv4:10.0.0.9:1234") == "peer-10.0.0.9"
    assert peer_host("ipv6:[::1]:50051") == "::1" and peer_host("unix:/tmp/s") == "unix:/tmp/s"


@pytest.mark.parametrize("value", [",", " , ", ""])
def test_a_blank_key_list_refuses_to_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("GPTOSS_API_KEYS", value)
    with pytest.raises(pydantic.ValidationError, match="holds no key"):
        Settings(profile="cpu-tiny")
    assert Settings(profile="cpu-tiny", auth_disabled=True).all_api_keys() == []


def test_an_empty_key_file_refuses_to_start(tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.write_text("# no keys yet\n\n")
    with pytest.raises(pydantic.ValidationError, match="api_key_file"):
        Settings(profile="cpu-tiny", api_key_file=empty)
    empty.write_text("# ops\nk-file\n")
    settings = Settings(profile="cpu-tiny", api_key_file=empty, trusted_gateway_keys="gw")
    assert settings.all_api_keys() == ["k-file", "gw"]
    assert Settings(profile="cpu-tiny").all_api_keys() == []  # nothing given: auth off, as before


def test_key_values_never_appear_in_errors_or_summaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPTOSS_TRUSTED_GATEWAY_KEYS", "very-secret-gw")
    with pytest.raises(pydantic.ValidationError) as raised:
        Settings(profile="cpu-tiny", api_keys=",")
    assert "very-secret-gw" not in str(raised.value)
    summary = Settings(profile="cpu-tiny").public_summary()
    assert summary["trusted_gateway_keys"] == 1 and "very-secret-gw" not in str(summary)


def test_a_key_on_the_command_line_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_about_keys_in_argv(["--port", "1"])
        assert not caplog.records
        warn_about_keys_in_argv(["--api-keys=k1"])
        warn_about_keys_in_argv(["--trusted-gateway-keys", "gw"])
    assert len(caplog.records) == 2 and all("GPTOSS_API_KEYS" in r.getMessage() for r in caplog.records)
    assert not any("k1" in r.getMessage() for r in caplog.records)


def test_the_service_refuses_to_start_on_a_blank_key_list(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GPTOSS_API_KEYS", ",")
    assert main([]) == 2  # before anything listens
    assert "holds no key" in capsys.readouterr().err
