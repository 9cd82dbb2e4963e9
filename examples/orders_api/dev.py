"""Development keys and tokens: an ES256 signing key, its JWKS file, and tokens for the
seeded users, so the API can be tried without an identity provider."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

USERS = {
    "alice": {"roles": ["viewer"], "tenant": "t1", "mfa": False},
    "bob": {"roles": ["admin"], "tenant": "t1", "mfa": True},
    "carol": {"roles": ["support"], "tenant": "t1", "mfa": True},
    "erin": {"roles": ["viewer"], "tenant": "t2", "mfa": False},
    "zed": {"roles": [], "tenant": "t1", "mfa": False},
}


class DevIssuer:
    def __init__(self, folder: Path, issuer: str = "https://id.example.test",
                 audience: str = "orders-api"):
        folder.mkdir(parents=True, exist_ok=True)
        pem = folder / "signing-key.pem"
        if pem.exists():
            self.key = serialization.load_pem_private_key(pem.read_bytes(), None)
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            pem.write_bytes(self.key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "dev", "alg": "ES256"}]}))
        self.issuer, self.audience = issuer, audience

    def token(self, user: str, ttl: int = 3600, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "sub": user, "iat": now,
                "exp": now + ttl, **USERS.get(user, {}), **claims}
        return jwt.encode(body, self.key, algorithm="ES256", headers={"kid": "dev"})
