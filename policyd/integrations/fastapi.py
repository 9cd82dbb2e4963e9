"""FastAPI and Starlette: `Depends(policyd.protect(...))` authenticates, matches the
route, loads the object, decides, and hands the handler an `Access`; refusals become
401, 403, 404, 429 (Retry-After), 400 and 503 through `install(app)`'s handler.

Imports Starlette only (FastAPI is built on it); `pip install policyd[fastapi]`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from .authorizer import AsyncAuthorizer, answers, claims_refused
from .errors import AccessRefused, BadRequest, NotFound, Unauthenticated
from .gate import Access, Gate, json_body
from .masking import guard_writes, visible
from .sqlalchemy import authorized_query

__all__ = ["Access", "Policyd", "authorized_query", "guard_writes", "refusal_response",
           "visible", "visible_rows"]
_BODIES = ("POST", "PUT", "PATCH")


async def _call(fn: Callable, *args, **kwargs):
    """An async function awaited; a plain one run in the thread pool (it may block)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


def _raw_path(scope) -> str:
    """The path as sent (the route table percent-decodes it once; the server's `path` is
    decoded already, and decoding twice would name another object)."""
    raw = scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    return quote(scope["path"])


def refusal_response(request: Request, exc: AccessRefused) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


class Policyd:
    """The integration for one app. `authenticate`: a JwtVerifier (bearer tokens) or a
    function of the Request returning the principal dict (None: 401)."""

    def __init__(self, authorizer, authenticate, context: Callable | None = None,
                 trust_gateway: bool = False, conceal: str | None = None):
        self.authorizer = authorizer
        self.gate = Gate(authorizer, authenticate, context, trust_gateway, conceal)
        self._inline = isinstance(authorizer, AsyncAuthorizer) or authorizer.engine is not None

    def install(self, app) -> None:
        """Answer every AccessRefused raised in the app with its status and headers."""
        app.add_exception_handler(AccessRefused, refusal_response)

    def protect(self, load: Callable | None = None, new: Callable | None = None,
                action: str | None = None, resource: str | type | None = None,
                writes: bool | None = None):
        """A dependency. `load(id, **path_attrs)` returns the route's object or None (404);
        `new(principal, body)` builds the object a create would make; without either, a
        collection route is planned (`Access.plan`, for `authorized_query`). `writes`:
        check the body's fields as write fields (default: on PATCH and PUT)."""
        async def policyd_access(request: Request) -> Access:
            return await self.access(request, load=load, new=new, action=action,
                                     resource=resource, writes=writes)
        return policyd_access

    async def access(self, request: Request, load=None, new=None, action=None,
                     resource=None, writes=None) -> Access:
        gate, method = self.gate, request.method
        principal = await self._principal(request)
        target = gate.target(method, _raw_path(request.scope), action, resource,
                             request.path_params.get("id"))
        trusted = gate.gateway_access(request.headers, target)
        context = gate.context(request.client.host if request.client else None, request)
        body = json_body(await request.body()) if method in _BODIES else None
        obj = None
        if target.id is not None:
            if load is None:
                raise ValueError(f"{target.route or target.action} names an object: give "
                                 "`load`")
            obj = await _call(load, target.id, **target.path_attrs)
        elif new is not None and trusted is None:
            obj = await _call(new, principal, body)
        if target.id is not None and obj is None:
            raise NotFound("no such object")
        if new is not None and trusted is None and obj is None:
            raise ValueError("`new` built no object")
        if trusted is not None:
            trusted.obj = obj
            return trusted
        if obj is None:
            return gate.planned(principal, target, await self._ask("decide_plan",
                gate.plan_request(principal, target, context)))
        fields = gate.writes(method, body, writes)
        req = gate.object_request(principal, target, obj, context, fields)
        try:
            found = await self._ask("decide", req)
            visible = None
            if gate.concealing(target, found[0]):  # refused: may it see the object at all?
                visible = (await self._ask("decide", gate.conceal_request(req)))[0].allowed
        except BadRequest as exc:
            raise gate.stored(exc) if new is None else exc from None
        return gate.decided(principal, target, obj, found, fields, visible)

    async def _principal(self, request: Request) -> dict:
        auth = self.gate.authenticate
        if hasattr(auth, "verify"):
            return self.gate.token_principal(request.headers)
        found = await _call(auth, request)
        if not found:
            raise Unauthenticated("no principal")
        return found

    async def _ask(self, method: str, request: dict):
        """`decide` or `decide_plan`: awaited (async), inline (in process) or in the thread
        pool (a blocking remote call), with refusals as AccessRefused."""
        a = self.authorizer
        if isinstance(a, AsyncAuthorizer):
            return await _answered(getattr(a, method)(request))
        if self._inline:
            return _sync_answered(getattr(a, method), request)
        return await run_in_threadpool(_sync_answered, getattr(a, method), request)


async def _answered(awaitable):
    with claims_refused(), answers():
        return await awaitable


def _sync_answered(fn, request):
    with claims_refused(), answers():
        return fn(request)


def visible_rows(access: Access, rows) -> list[dict]:
    """Each row of a planned collection masked by what the plan shows for it."""
    return [access.visible(r) for r in rows]

