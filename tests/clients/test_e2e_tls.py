"""TLS and mutual TLS between the client / CLI and the real service (scripted engine, real grpc TLS)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gptoss import NO_RETRY, Client, TlsConfig, UnavailableError

from tests.clients.e2e_support import final_script, gptoss
from tests.clients.tls_certs import Pki, make_pki
from tests.support.server_thread import ServerThread

USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def test_mutual_tls(scripted_server: Callable[..., ServerThread], pki: Pki) -> None:
    server = scripted_server(
        final_script("secure"),
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        tls_client_ca=str(pki.ca),
    )
    tls = TlsConfig(
        root_certificates=pki.ca.read_bytes(),
        client_certificate=pki.client_cert,
        client_key=str(pki.client_key),
    )
    with Client(server.target, tls=tls, timeout=30) as client:
        assert client.complete(messages=USER).content == "secure"
    # No client certificate: the server refuses the handshake.
    with Client(server.target, tls=TlsConfig(root_certificates=pki.ca), timeout=10, retry=NO_RETRY) as client:
        with pytest.raises(UnavailableError):
            client.model_info()
    # Plaintext against a TLS port fails the same way, rather than hanging.
    with Client(server.target, timeout=10, retry=NO_RETRY) as client, pytest.raises(UnavailableError):
        client.model_info()

    tls_flags = ["--target", server.target, "--ca-cert", str(pki.ca)]
    ok = gptoss("chat", *tls_flags, "--cert", str(pki.client_cert), "--key", str(pki.client_key), "hi")
    assert (ok.returncode, ok.stdout) == (0, "secure\n"), ok.stderr
    refused = gptoss("models", *tls_flags, timeout=60)
    assert refused.returncode == 3, refused.stderr


def test_server_tls_with_a_name_override(
    scripted_server: Callable[..., ServerThread], tmp_path: Path
) -> None:
    """Server-only TLS with a certificate for `localhost` only: dialing 127.0.0.1 needs the override."""
    pki = make_pki(tmp_path, ip_san=False)
    server = scripted_server(
        final_script("hello"), tls_cert=str(pki.server_cert), tls_key=str(pki.server_key)
    )
    with Client(server.target, tls=TlsConfig(root_certificates=pki.ca), timeout=10, retry=NO_RETRY) as client:
        with pytest.raises(UnavailableError):
            client.model_info()  # name mismatch: 127.0.0.1 is not in the certificate
    tls = TlsConfig(root_certificates=pki.ca, server_name_override="localhost")
    with Client(server.target, tls=tls, timeout=30) as client:
        assert client.complete(messages=USER).content == "hello"
    ok = gptoss(
        "chat", "--target", server.target, "--ca-cert", str(pki.ca), "--server-name", "localhost", "hi"
    )
    assert (ok.returncode, ok.stdout) == (0, "hello\n"), ok.stderr
    # A CA that did not sign the server certificate is rejected.
    (tmp_path / "other").mkdir()
    other = make_pki(tmp_path / "other")
    with Client(
        server.target,
        tls=TlsConfig(root_certificates=other.ca, server_name_override="localhost"),
        timeout=10,
        retry=NO_RETRY,
    ) as client:
        with pytest.raises(UnavailableError):
            client.model_info()
