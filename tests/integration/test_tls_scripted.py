"""TLS and mutual TLS on the gRPC port, with certificates made in the test."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gptoss.v1 import inference_pb2 as pb
from gptoss.v1 import inference_pb2_grpc

from tests.support.server_thread import ServerThread

ServerFactory = Callable[..., ServerThread]


def _issue(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, *, ca: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_cert, ca_key = _issue("test-ca", None, ca=True)
    server_cert, server_key = _issue("localhost", (ca_cert.subject, ca_key), ca=False)
    client_cert, client_key = _issue("client", (ca_cert.subject, ca_key), ca=False)
    files = {
        "ca": _pem(ca_cert),
        "server_cert": _pem(server_cert),
        "server_key": _key_pem(server_key),
        "client_cert": _pem(client_cert),
        "client_key": _key_pem(client_key),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(data)
    return paths


SCRIPT = [[200005], [17196], [200008], [24912], [200002]]  # <|channel|>final<|message|>hello<|return|>
REQUEST = pb.GenerateRequest(messages=[pb.Message(role=pb.ROLE_USER, content="hi")])


def _call(target: str, credentials: grpc.ChannelCredentials) -> pb.Done:
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with grpc.secure_channel(target, credentials, options=options) as channel:
        responses = list(inference_pb2_grpc.InferenceServiceStub(channel).Generate(REQUEST, timeout=10))
    return responses[-1].done


def test_tls(scripted_server: ServerFactory, pki: dict[str, Path]) -> None:
    server = scripted_server(SCRIPT, tls_cert=str(pki["server_cert"]), tls_key=str(pki["server_key"]))
    done = _call(server.target, grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes()))
    assert done.finish_reason == pb.FINISH_REASON_STOP
    with grpc.insecure_channel(server.target) as plain, pytest.raises(grpc.RpcError):
        list(inference_pb2_grpc.InferenceServiceStub(plain).Generate(REQUEST, timeout=3))


def test_mutual_tls_requires_a_client_certificate(
    scripted_server: ServerFactory, pki: dict[str, Path]
) -> None:
    server = scripted_server(
        SCRIPT,
        tls_cert=str(pki["server_cert"]),
        tls_key=str(pki["server_key"]),
        tls_client_ca=str(pki["ca"]),
    )
    with_client = grpc.ssl_channel_credentials(
        root_certificates=pki["ca"].read_bytes(),
        private_key=pki["client_key"].read_bytes(),
        certificate_chain=pki["client_cert"].read_bytes(),
    )
    assert _call(server.target, with_client).finish_reason == pb.FINISH_REASON_STOP
    without_client = grpc.ssl_channel_credentials(root_certificates=pki["ca"].read_bytes())
    with pytest.raises(grpc.RpcError) as raised:
        _call(server.target, without_client)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
