"""What `[authn]` in the serve configuration holds: JWT verification and mTLS callers.
Validated once at startup (pydantic); every key is documented in docs/server.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Asymmetric algorithms only: an HMAC secret would have to be shared with every verifier,
# and accepting one where a public key is configured is the classic key-confusion attack.
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                  "ES512", "EdDSA")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JwtSettings(_Section):
    """[authn.jwt]: who may sign tokens for whom, and how claims become the principal."""

    issuers: list[str] = Field(min_length=1)
    audiences: list[str] = Field(min_length=1)
    jwks: str  # a file, or an https:// URL (http:// only to 127.0.0.1, for tests)
    algorithms: list[Literal[JWT_ALGORITHMS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["RS256", "ES256", "EdDSA"], min_length=1)
    leeway_s: float = Field(30, ge=0, le=600)
    jwks_refresh_s: float = Field(300, ge=1, le=86400)
    principal_type: str
    claims: dict[str, str] = Field(default_factory=dict)  # principal attribute = claim name
    required_claims: list[str] = Field(default_factory=lambda: ["exp", "sub"])
    trust_envoy_jwt_metadata: bool = False  # use the payload Envoy's jwt_authn verified
    envoy_jwt_metadata_key: str = "jwt_payload"

    @model_validator(mode="after")
    def _jwks_source(self) -> JwtSettings:
        if "://" in self.jwks:
            _jwks_url(self.jwks)
        elif not Path(self.jwks).is_file():
            raise ValueError(f"authn.jwt.jwks: no such file: {self.jwks}")
        return self


def _jwks_url(url: str) -> None:
    """An https:// URL, or http:// to the loopback address only (for tests): the host is
    the parsed one, so `http://127.0.0.1:@evil.example/` (userinfo) is evil.example."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.port == 0:  # reading .port also refuses a malformed or out-of-range one
            raise ValueError("port 0")
    except ValueError as exc:
        raise ValueError(f"authn.jwt.jwks: not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("authn.jwt.jwks: an https:// URL (or a file)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("authn.jwt.jwks: a URL with user information is refused")
    if parts.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("authn.jwt.jwks: an http:// URL only on 127.0.0.1; use https://")


class MtlsSettings(_Section):
    """[authn.mtls]: a caller Envoy authenticated by its client certificate."""

    principal_type: str


class AuthnSettings(_Section):
    jwt: JwtSettings | None = None
    mtls: MtlsSettings | None = None


