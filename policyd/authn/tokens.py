"""Bearer tokens: JWT verification (PyJWT with cryptography) against a JWKS, and the
principal a verified token names.

The header is trusted for nothing but choosing a key: the algorithm must be on the
allow-list (asymmetric only, never `none`) and match the key's type, and the key comes
only from the configured JWKS. The JWKS is fetched in the background, never on a
request's thread: a token with an unknown `kid` is refused at once and starts a fetch
(at most one at a time, at most once per `jwks_refresh_s`), keys older than that are
refetched the same way, and a fetch has a total deadline, so a slow or trickling JWKS
endpoint costs no caller anything.

Verified tokens are remembered (by their exact text, as Envoy's jwt_authn does): a
client sends the same token on every request, and a signature check costs 50-300 us
where a lookup costs one. `exp` and `nbf` are checked again on every use, and the
memory is dropped whenever the JWKS changes, so a rotated-out key stops working at once.
Time claims must be JSON numbers (RFC 7519's NumericDate): PyJWT converts a numeric
string with int(), and a token accepted that way would never expire from the memory.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt

from .settings import JwtSettings

log = logging.getLogger("policyd.authn")
_FAMILY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}  # alg prefix -> JWK kty


class TokenError(Exception):
    """A token that cannot be accepted; `missing` when there was none at all. The message
    is for the decision log, never for the caller."""

    def __init__(self, message: str, missing: bool = False):
        super().__init__(message)
        self.missing = missing


class KeySet:
    """The JWKS of one source (a file or a URL), cached between refreshes."""

    def __init__(self, source: str, refresh_s: float, clock=time.monotonic,
                 timeout: float = 5.0):
        self.source, self.refresh_s, self.clock, self.timeout = source, refresh_s, clock, timeout
        self._keys: dict = {}
        self.generation = 0  # changes when the keys do: verified tokens are forgotten
        self._fetched = float("-inf")
        self._fetching = False
        self._lock = threading.Lock()
        self.fetches = 0
        self.refresh(force=True)

    def _text(self) -> str:
        """The JWKS document within `timeout` seconds in all (a socket timeout alone is per
        read, and an endpoint that trickles a byte at a time never reaches it)."""
        if "://" not in self.source:
            return Path(self.source).read_text(encoding="utf-8")
        deadline = time.monotonic() + self.timeout
        chunks, size = [], 0
        with _OPENER.open(self.source, timeout=min(1.0, self.timeout)) as resp:
            while True:
                chunk = resp.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > _JWKS_MAX:
                    raise ValueError(f"the JWKS is larger than {_JWKS_MAX:,} bytes")
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no complete JWKS within {self.timeout:g} s")
        return b"".join(chunks).decode("utf-8")

    def refresh(self, force: bool = False, wait: bool | None = None) -> None:
        """Fetch the keys again: now when forced (or `wait`), else in the background, and
        only when no fetch is under way and the last began `refresh_s` ago or more."""
        with self._lock:
            now = self.clock()
            if self._fetching or not force and now - self._fetched < self.refresh_s:
                return
            self._fetched, self._fetching = now, True
            self.fetches += 1
        if force if wait is None else wait:
            self._load()
        else:
            threading.Thread(target=self._load, name="policyd-jwks", daemon=True).start()

    def _load(self) -> None:
        try:
            new = {k.key_id: k for k in jwt.PyJWKSet.from_json(self._text()).keys}
        except Exception as exc:  # keep the keys we had: an outage must not log out all
            log.error("cannot load the JWKS from %s: %s", self.source, exc)
            self._fetching = False
            return
        with self._lock:
            if set(new) != set(self._keys) or any(
                    new[kid].key != self._keys[kid].key for kid in new):
                self.generation += 1
            self._keys, self._fetching = new, False

    def get(self, kid):
        """The key named `kid`, from the keys held now (None when unknown: a fetch is
        started in the background for the next token)."""
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))  # a token without kid, a JWKS of one key
        if key is None or self.clock() - self._fetched >= self.refresh_s:
            self.refresh()
        return key


_JWKS_MAX = 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The JWKS comes from the configured URL only: a redirect (to plain HTTP, to another
    host) is a failed fetch, never followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused",
                                     headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirect)
_REMEMBERED = 10_000
_TIME_CLAIMS = ("exp", "nbf", "iat")  # checked here, not by PyJWT: one rule, first and cached


def _numeric_date(claims: dict, name: str) -> float | None:
    """A time claim's value: None when absent; a TokenError unless a finite JSON number
    (not a string, not a bool)."""
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    if type(value) not in (int, float) or value != value or value in (
            float("inf"), float("-inf")):
        raise TokenError(f"the token's `{name}` claim is not a number (RFC 7519 NumericDate)")
    return value


class JwtVerifier:
    def __init__(self, settings: JwtSettings, keys: KeySet | None = None,
                 clock=time.time):
        self.settings = settings
        self.keys = keys or KeySet(settings.jwks, settings.jwks_refresh_s)
        self.clock = clock
        self._verified: dict[str, dict] = {}
        self._generation = self.keys.generation

    def claims(self, token: str) -> dict:
        """The verified claims of a compact JWS; raises TokenError."""
        if self._generation != self.keys.generation:  # the keys changed: verify afresh
            self._verified, self._generation = {}, self.keys.generation
        found = self._verified.get(token)
        if found is not None:
            self._still_valid(found)
            return found
        claims = self._verify(token)
        if len(self._verified) >= _REMEMBERED:
            self._verified = {}
        self._verified[token] = claims
        return claims

    def _still_valid(self, claims: dict) -> None:
        """What a remembered token must still satisfy: whatever `exp` and `nbf` it was
        accepted with (numbers, see _numeric_date) against the clock now."""
        now, leeway = self.clock(), self.settings.leeway_s
        exp, nbf = _numeric_date(claims, "exp"), _numeric_date(claims, "nbf")
        if exp is not None and now > exp + leeway:
            raise TokenError("the token has expired")
        if nbf is not None and now < nbf - leeway:
            raise TokenError("the token is not valid yet (nbf/iat)")

    def _verify(self, token: str) -> dict:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the token is not a JWT") from None
        alg = header.get("alg")
        if alg not in s.algorithms:
            raise TokenError(f"algorithm {alg!r} is not accepted (allowed: "
                             f"{', '.join(s.algorithms)})")
        key = self.keys.get(header.get("kid"))
        if key is None:
            raise TokenError(f"unknown signing key {header.get('kid')!r}")
        declared = getattr(key, "algorithm_name", None)
        if _FAMILY.get(alg[:2]) != key.key_type or declared not in (None, alg) and \
                key._jwk_data.get("alg") not in (None, alg):
            raise TokenError(f"algorithm {alg!r} does not fit key {key.key_id!r}")
        try:
            claims = jwt.decode(token, key.key, algorithms=[alg], audience=s.audiences,
                                issuer=s.issuers, options={
                                    "require": list(s.required_claims), "verify_exp": False,
                                    "verify_nbf": False, "verify_iat": False})
        except jwt.InvalidAudienceError:
            raise TokenError("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the token's issuer is not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"the token is invalid: {type(exc).__name__}") from None
        iat = [_numeric_date(claims, name) for name in _TIME_CLAIMS][2]
        self._still_valid(claims)
        if iat is not None and iat > self.clock() + s.leeway_s:
            raise TokenError("the token is not valid yet (nbf/iat)")
        return claims

    def principal(self, claims: dict) -> dict:
        """The principal a token names: `sub` as id, claims as the configured attributes
        (the engine validates them against the declared type like any request)."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("the token has no `sub` claim naming the principal")
        attrs = {attr: claims[claim] for attr, claim in self.settings.claims.items()
                 if claim in claims}
        return {"type": self.settings.principal_type, "id": sub, "attrs": attrs}

    def verify(self, token: str) -> dict:
        return self.principal(self.claims(token))


MAX_TOKEN = 16 * 1024  # bytes: far past any real JWT, short of a parser's worst case


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header (RFC 6750); raises TokenError."""
    if not authorization:
        raise TokenError("no bearer token", missing=True)
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("the Authorization header is not a bearer token")
    if len(token) > MAX_TOKEN:
        raise TokenError(f"the bearer token is over {MAX_TOKEN:,} bytes")
    return token.strip()
