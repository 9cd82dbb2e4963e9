"""Real components for the gateway tests: signing keys and a JWKS served over loopback
HTTP, an upstream that echoes the headers it got, and a real Envoy whose configuration
is the one docs/envoy.md shows."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .conftest import ROOT
from .servers import free_port


def envoy_binary() -> Path | None:
    try:
        import envoy
    except ImportError:
        return None
    path = Path(envoy.__file__).parent / "_bin" / "envoy"
    return path if path.is_file() else None


class Keys:
    """Signing keys of an issuer, and its JWKS (which may be rotated)."""

    def __init__(self):
        self.private = {"r1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                        "e1": ec.generate_private_key(ec.SECP256R1()),
                        "o1": ed25519.Ed25519PrivateKey.generate(),
                        "r2": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.published = ["r1", "e1", "o1"]

    def jwks(self) -> str:
        out = []
        for kid in self.published:
            key = self.private[kid].public_key()
            cls = RSAAlgorithm if kid[0] == "r" else ECAlgorithm if kid[0] == "e" else \
                OKPAlgorithm
            jwk = json.loads(cls.to_jwk(key))
            jwk["kid"] = kid
            out.append(jwk)
        return json.dumps({"keys": out})

    def token(self, kid="r1", alg=None, **claims) -> str:
        alg = alg or {"r": "RS256", "e": "ES256", "o": "EdDSA"}[kid[0]]
        now = int(time.time())
        body = {"iss": "https://idp.test", "aud": "orders-api", "sub": "alice", "iat": now,
                "exp": now + 300, "roles": ["viewer"], "tenant": "t1", **claims}
        return jwt.encode({k: v for k, v in body.items() if v is not None},
                          self.private[kid], algorithm=alg, headers={"kid": kid})

    def public_pem(self, kid="r1") -> bytes:
        return self.private[kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class _Handler(BaseHTTPRequestHandler):
    def _answer(self):
        if self.path == "/jwks.json":
            body = self.server.keys.jwks().encode()
            self.server.jwks_fetches += 1
        else:
            body = json.dumps({"method": self.command, "path": self.path,
                               "headers": {k.lower(): v for k, v in self.headers.items()}}
                              ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


class Upstream:
    """The service behind Envoy (it echoes what it received) and the issuer's JWKS."""

    def __init__(self, keys: Keys):
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
        self.server.keys, self.server.jwks_fetches = keys, 0
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def jwks_fetches(self) -> int:
        return self.server.jwks_fetches

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def envoy_config(listen: int, policyd: int, upstream: int) -> str:
    """The YAML of docs/envoy.md with the ports filled in."""
    text = (ROOT / "docs" / "envoy.md").read_text(encoding="utf-8")
    yaml = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    return yaml.replace("LISTEN_PORT", str(listen)).replace("POLICYD_PORT", str(policyd)) \
        .replace("UPSTREAM_PORT", str(upstream))


class Envoy:
    def __init__(self, binary: Path, tmp: Path, policyd_port: int, upstream_port: int):
        self.port = free_port()
        config = tmp / "envoy.yaml"
        config.write_text(envoy_config(self.port, policyd_port, upstream_port))
        self.log_path = tmp / "envoy.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [str(binary), "-c", str(config), "--concurrency", "1", "-l", "warning",
             "--base-id", str(self.port), "--disable-hot-restart"],
            stdout=self._log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).connect()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError("envoy did not start:\n" +
                                       self.log_path.read_text()) from None
                time.sleep(0.1)

    def request(self, method: str, path: str, token: str | None = None,
                headers: dict | list | None = None):
        """(status, headers, body) of one request through Envoy; the path is sent as is, and
        `headers` as a list of pairs sends a header as many times as it is listed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        pairs = list(headers.items() if isinstance(headers, dict) else headers or [])
        if token is not None:
            pairs.append(("authorization", f"Bearer {token}"))
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in pairs:
            conn.putheader(key, value)
        body = b"" if method in ("POST", "PATCH") else None
        if body is not None:
            conn.putheader("content-length", "0")
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
