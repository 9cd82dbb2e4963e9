"""Authentication at policyd's front doors: bearer JWTs (and mTLS callers) as principals.
Shared by the Envoy authorizer, `Check` with `principal_token`, and the integrations."""

from .settings import AuthnSettings, JwtSettings, MtlsSettings
from .tokens import JwtVerifier, KeySet, TokenError, bearer

__all__ = ["AuthnSettings", "JwtSettings", "JwtVerifier", "KeySet", "MtlsSettings",
           "TokenError", "bearer"]
