"""A local identity provider: mints development JWTs and verifies them as API Gateway's JWT
authorizer would (issuer, audience, signature, expiry), with PyJWT."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEV_ISSUER = "https://identity.partsemble.local"
DEV_AUDIENCE = "partsemble-accounting"


class InvalidToken(Exception):
    pass


@dataclass
class DevIdentityProvider:
    issuer: str = DEV_ISSUER
    audience: str = DEV_AUDIENCE
    organisation_claim: str = "org_id"
    _key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048), repr=False)

    def mint(
        self,
        organisation_id: str,
        *,
        subject: str = "dev-user",
        ttl_seconds: int = 12 * 3600,
        now: float | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "exp": issued + ttl_seconds,
            "jti": str(uuid.uuid4()),
            self.organisation_claim: organisation_id,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "local"})

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """Claims of a valid ``Bearer`` token; ``InvalidToken`` otherwise."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise InvalidToken("no bearer token")
        try:
            claims: dict[str, Any] = jwt.decode(
                authorization[7:].strip(),
                self._key.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as err:
            raise InvalidToken(str(err)) from None
        return claims
