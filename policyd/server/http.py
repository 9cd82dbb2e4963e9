"""The HTTP front door: the AuthZEN Authorization API (server.authzen) as a Starlette app,
served by uvicorn on a thread of the serve process, so it shares the engine, hot
reload, rate store, decision log and metrics with gRPC, and drains with it.

Everything a client sends is read defensively: the content type must be JSON, the
body is bounded (413), JSON that does not parse or nests too deeply is a 400, and an
unexpected failure is a 500 that names nothing and is logged once.
"""

from __future__ import annotations

import hmac
import json
import logging
import ssl
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response
from starlette.routing import Route

from .authzen import AuthZen, BadRequest

log = logging.getLogger("policyd.http")
PATHS = {"access_evaluation_endpoint": "/access/v1/evaluation",
         "access_evaluations_endpoint": "/access/v1/evaluations",
         "search_subject_endpoint": "/access/v1/search/subject",
         "search_resource_endpoint": "/access/v1/search/resource",
         "search_action_endpoint": "/access/v1/search/action"}


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        self.status, self.message, self.headers = status, message, headers or {}


class AuthZenApp:
    def __init__(self, authzen: AuthZen, base_url: str, max_body: int, pep_tokens=()):
        self.authzen, self.base_url = authzen, base_url.rstrip("/")
        self.max_body, self.pep_tokens = max_body, tuple(pep_tokens)
        self._logged: set[str] = set()
        routes = [Route("/.well-known/authzen-configuration", self.metadata, methods=["GET"]),
                  Route("/healthz", self.healthz, methods=["GET"]),
                  Route("/readyz", self.readyz, methods=["GET"])]
        for endpoint, path in PATHS.items():
            routes.append(Route(path, self._api(endpoint), methods=["POST"]))
        self.app = Starlette(routes=routes)

    # ---- plain endpoints ---------------------------------------------------------------

    async def metadata(self, request: Request) -> Response:
        doc = {"policy_decision_point": self.base_url,
               **{k: self.base_url + p for k, p in PATHS.items()}}
        return JSONResponse(doc, headers=_echo(request))

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready once listening: the engine is installed before the HTTP side starts, and
        a draining server stops accepting connections."""
        return JSONResponse({"status": "ready"})

    # ---- the API -----------------------------------------------------------------------

    def _api(self, endpoint: str):
        handle = {"access_evaluation_endpoint": self.authzen.evaluation,
                  "access_evaluations_endpoint": self.authzen.evaluations}.get(endpoint)
        kind = endpoint.split("_")[1] if handle is None else None

        async def call(request: Request) -> Response:
            headers = _echo(request)
            try:
                self._authenticate(request)
                body = await self._body(request)
                rid = request.headers.get("x-request-id", "")
                peer = request.client.host if request.client else ""
                # a search reads every entity of a type: off the event loop, so health
                # checks and evaluations are answered meanwhile
                out = handle(body, rid, peer) if handle else \
                    await run_in_threadpool(self.authzen.search, kind, body, rid, peer)
                return JSONResponse(out, headers=headers)
            except _Refused as exc:
                return JSONResponse({"error": exc.message}, status_code=exc.status,
                                    headers={**headers, **exc.headers})
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400, headers=headers)
            except Exception as exc:  # fail closed: no traceback, no decision, logged once
                key = type(exc).__name__
                if key not in self._logged:
                    self._logged.add(key)
                    log.error("AuthZEN request failed: %s: %s", key, exc)
                return JSONResponse({"error": "internal error"}, status_code=500,
                                    headers=headers)
        return call

    def _authenticate(self, request: Request) -> None:
        if not self.pep_tokens:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode()
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(given, t)
                                                 for t in self.pep_tokens):
            raise _Refused(401, "the PEP is not authenticated: send a configured bearer token",
                           {"www-authenticate": "Bearer"})

    async def _body(self, request: Request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise _Refused(400, "the request's Content-Type must be application/json")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise _Refused(413, f"the body is over {self.max_body:,} bytes")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > self.max_body:
                raise _Refused(413, f"the body is over {self.max_body:,} bytes")
        if not data:
            raise _Refused(400, "the request body is empty")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Refused(400, f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise _Refused(400, "the body is nested too deeply") from None
        if not isinstance(body, dict):
            raise _Refused(400, "the body must be a JSON object")
        return body


class JSONResponse(_StarletteJSON):
    """Starlette's JSONResponse, but a body holding a lone surrogate (an id from entity
    data, say) is written with JSON escapes instead of failing to encode as UTF-8."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False,
                              separators=(",", ":")).encode("ascii")


def _echo(request: Request) -> dict:
    rid = request.headers.get("x-request-id")
    return {"x-request-id": rid} if rid is not None else {}


class HttpServer:
    """uvicorn on a thread: started after gRPC, stopped (drained) with it."""

    def __init__(self, app, host: str, port: int, tls=None, grace: float = 5.0,
                 started=None):
        options = {}
        if tls is not None:
            cert, key, client_ca = tls
            options = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
            if client_ca is not None:  # mutual TLS: the PEP authenticates by certificate
                options.update(ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off",
                                timeout_graceful_shutdown=max(1, int(grace)),
                                server_header=False, **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="policyd-http",
                                       daemon=True)
        self.port, self.started = port, started

    def start(self) -> None:
        self.thread.start()
        end = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise OSError(f"the HTTP server could not listen on port {self.port}")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        if self.started is not None:
            self.started(self.port)

    def stop(self, grace: float) -> None:
        self.server.should_exit = True
        self.thread.join(grace + 5)
