"""Server configuration, validated once at startup (pydantic): bad flags are usage errors
with the flag's name, never a failure later."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..authn.settings import AuthnSettings

MiB = 1024 * 1024
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvoySettings(_Section):
    """[envoy]: the external authorizer's view of HTTP requests."""

    enabled: bool | None = None  # None: serve it whenever the set declares routes
    context_headers: dict[str, str] = Field(default_factory=dict)  # context attr = header
    # context.ip: the address Envoy saw, or with N trusted hops the Nth address from the
    # right of ip_header (docs/envoy.md, "The client's address")
    xff_num_trusted_hops: int = Field(0, ge=0, le=16)
    ip_header: str | None = None  # default x-forwarded-for; read only with trusted hops

    @model_validator(mode="after")
    def _hops(self) -> EnvoySettings:
        if self.ip_header is not None and self.xff_num_trusted_hops == 0:
            raise ValueError("envoy.ip_header is read only with envoy.xff_num_trusted_hops "
                             "of 1 or more (the proxies in front of Envoy you trust); with 0, "
                             "context.ip is the address Envoy saw")
        return self


class AuthZenSettings(_Section):
    """[authzen]: the HTTP front door (docs/authzen.md)."""

    types: dict[str, str] = Field(default_factory=dict)  # AuthZEN type = declared name
    pep_tokens: Path | None = None  # accepted PEP bearer tokens, one a line
    expose_reasons: bool = False
    response_context: bool = False  # add `context` (the decision id) to decisions
    base_url: str | None = None  # as PEPs reach it, behind proxies: https://pdp.example
    page_secret: str | None = None  # page tokens valid across workers and restarts

    @model_validator(mode="after")
    def _files(self) -> AuthZenSettings:
        if self.pep_tokens is not None and not self.pep_tokens.is_file():
            raise ValueError(f"authzen.pep_tokens: no such file: {self.pep_tokens}")
        pep_tokens(self.pep_tokens)  # every line is read at start, as serving reads it
        return self


def pep_tokens(path: Path | None) -> tuple[bytes, ...]:
    """The PEP bearer tokens of a file, one a line; blank lines and comments (`#` first
    on its line, after any indentation) are skipped. A line that is neither a comment nor
    one token (RFC 6750: no whitespace inside) is a ValueError naming it."""
    if path is None:
        return ()
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        if any(c.isspace() for c in token) or not token.isascii():
            raise ValueError(f"authzen.pep_tokens: {path}:{number}: not one token (tokens "
                             "hold no spaces; a comment starts its line with #)")
        out.append(token.encode())
    return tuple(out)


class ServeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    data: list[Path] = Field(default_factory=list)  # entity data outside the set
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    threads: int | None = Field(None, ge=1, le=256)  # None: `request_threads` picks
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    max_message_bytes: int = Field(4 * MiB, ge=1024, le=1024 * MiB)
    grace: float = Field(5.0, ge=0, le=3600)
    reload: bool = True
    reload_interval: float = Field(0.5, gt=0, le=3600)
    rate_store: str = "memory"  # or redis://host:port/db, rediss:// (TLS), unix://path?db=N
    rate_max_keys: int = Field(1_000_000, ge=1)
    rate_key_prefix: str = Field("policyd:", min_length=1, max_length=128)
    rate_failure: Literal["open", "closed"] = "open"
    rate_timeout_ms: int = Field(50, ge=1, le=60_000)
    decision_log: str | None = None  # a file path, or "-" for standard output
    log_attributes: bool = False
    decision_log_queue: int = Field(10_000, ge=1)
    decision_log_wait: float = Field(2.0, ge=0, le=60)
    max_batch_decisions: int = Field(1000, ge=1, le=1_000_000)
    max_string_bytes: int = Field(4096, ge=16, le=1024 * MiB)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_format: Literal["text", "json"] = "text"
    shadow: Path | None = None  # a new set that decides every request too, for comparison
    http_port: int | None = Field(None, ge=0, le=65535)  # the AuthZEN API over HTTP(S)
    http_host: str | None = None  # default: --host
    envoy: EnvoySettings = Field(default_factory=EnvoySettings)
    authzen: AuthZenSettings = Field(default_factory=AuthZenSettings)
    authn: AuthnSettings = Field(default_factory=AuthnSettings)

    @model_validator(mode="after")
    def _consistent(self) -> ServeConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        for flag, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key),
                           ("--tls-client-ca", self.tls_client_ca)):
            if path is not None and not path.is_file():
                raise ValueError(f"{flag}: no such file: {path}")
        if self.rate_store != "memory" and not self.rate_store.startswith(REDIS_SCHEMES):
            raise ValueError("--rate-store is `memory` or a redis://, rediss:// or unix:// URL")
        if self.log_attributes and self.decision_log is None:
            raise ValueError("--log-attributes needs --decision-log")
        if self.workers > 1 and self.decision_log == "-":
            raise ValueError("--workers above 1 write one decision log file each: give a path")
        if self.workers > 1 and self.port == 0:
            raise ValueError("--workers above 1 needs a fixed --port (they share it)")
        return self

    @property
    def request_threads(self) -> int:
        """2, or 4 with Redis: more threads only help while handlers wait on I/O, and with
        Redis they do, and their rate checks then share round trips (docs/server.md)."""
        if self.threads is not None:
            return self.threads
        return 2 if self.rate_store == "memory" else 4

    def make_rate_store(self):
        """A fresh store (each worker process makes its own)."""
        from ..engine.ratelimit import MemoryStore

        if self.rate_store == "memory":
            return MemoryStore(self.rate_max_keys)
        from ..engine.redis_store import RedisStore

        return RedisStore(self.rate_store, prefix=self.rate_key_prefix,
                          timeout=self.rate_timeout_ms / 1000)
