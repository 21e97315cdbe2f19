"""Optional API keys: `Authorization: Bearer` checked in constant time; the caller's identity for the service."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from gateway._errors import GatewayError


def key_identity(key: str) -> str:
    """A stable, non-secret name for a key, forwarded to the service and used in logs and metrics."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


class ApiKeys:
    """The accepted keys; with none configured every request is anonymous and allowed."""

    def __init__(self, keys: Sequence[str]) -> None:
        # Compare digests, not keys: equal-length inputs keep compare_digest constant-time
        # and the number of keys tried does not depend on which one matched.
        self._keys = [(hashlib.sha256(k.encode()).digest(), key_identity(k)) for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, authorization: str | None) -> str | None:
        """The caller's identity, None when auth is off; raises a 401 GatewayError otherwise."""
        if not self._keys:
            return None
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise GatewayError(
                401,
                "Missing API key: send `Authorization: Bearer <key>`.",
                code="invalid_api_key",
            )
        digest = hashlib.sha256(token.encode()).digest()
        identity = None
        for key_digest, name in self._keys:
            if hmac.compare_digest(digest, key_digest):
                identity = name
        if identity is None:
            raise GatewayError(401, "Incorrect API key provided.", code="invalid_api_key")
        return identity
