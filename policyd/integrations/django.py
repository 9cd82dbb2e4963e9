"""Django: `PolicydMiddleware` authenticates, matches the route (404 for anything
undeclared) and plans collections; `decide_object` (or DRF's `PolicydPermission`, in
policyd.integrations.drf) decides the object; `authorized_queryset` filters a list by
the plan. `pip install policyd[django]`.

settings.POLICYD = {
    "AUTHORIZER": "app.policy.authorizer",   # dotted path to an Authorizer
    "AUTHENTICATE": "app.policy.verifier",   # a JwtVerifier, or a function of the request
    "EXEMPT": ["/admin/"],                   # path prefixes policyd does not guard
    "TRUST_GATEWAY": False,                  # honour x-policyd-decision from a proxy
}

Fail closed: a guarded object route whose view answered success without asking about
its object is answered 403 (and logged) instead.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.utils.module_loading import import_string

from ..plans.django import q
from .authorizer import answers, claims_refused
from .errors import AccessRefused, BadRequest, Forbidden, Unauthenticated
from .gate import WRITING, Access, Gate, json_body

log = logging.getLogger("policyd.django")
_SAFE = ("GET", "HEAD")


def _setting(name: str, default=None):
    return getattr(settings, "POLICYD", {}).get(name, default)


def _loaded(value):
    return import_string(value) if isinstance(value, str) else value


def refusal_response(exc: AccessRefused) -> JsonResponse:
    response = JsonResponse(exc.body(), status=exc.status)
    for k, v in exc.headers.items():
        response[k] = v
    return response


class PolicydMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        authorizer = _loaded(_setting("AUTHORIZER"))
        if authorizer is None:
            raise ValueError("settings.POLICYD['AUTHORIZER'] is not set")
        self.gate = Gate(authorizer, _loaded(_setting("AUTHENTICATE")),
                         _loaded(_setting("CONTEXT")), bool(_setting("TRUST_GATEWAY", False)),
                         _setting("CONCEAL"))
        self.exempt = tuple(_setting("EXEMPT", ()))

    def __call__(self, request):
        if self.exempt and request.path_info.startswith(self.exempt):
            return self.get_response(request)
        try:
            request.policyd = self._access(request)
        except AccessRefused as exc:
            return refusal_response(exc)
        response = self.get_response(request)
        access = request.policyd
        if access.decision is None and access.plan is None and response.status_code < 400:
            log.error("%s %s: the view never asked policyd about its object; refused",
                      request.method, request.path_info)
            return refusal_response(Forbidden("the view did not decide its object"))
        return response

    def process_exception(self, request, exc):
        return refusal_response(exc) if isinstance(exc, AccessRefused) else None

    def _access(self, request) -> Access:
        gate, headers = self.gate, request.headers
        auth = gate.authenticate
        if hasattr(auth, "verify"):
            principal = gate.token_principal(headers)
        else:
            principal = auth(request)
            if not principal:
                raise Unauthenticated("no principal")
        target = gate.target(request.method, request.path_info)
        trusted = gate.gateway_access(headers, target)
        if trusted is not None:
            return trusted
        context = gate.context(request.META.get("REMOTE_ADDR"), request)
        request.policyd_gate = gate
        if target.id is None and request.method in _SAFE:
            with claims_refused(), answers():
                found = gate.authorizer.decide_plan(gate.plan_request(principal, target,
                                                                      context))
            return gate.planned(principal, target, found)
        return Access(principal, target, authorizer=gate.authorizer, context=context)


def decide_object(request, obj: Any, body: Any = None) -> Access:
    """Decide the route's action on `obj` (an existing object, or the one a create would
    make), with the fields `body` writes on PATCH and PUT; raises AccessRefused."""
    access = getattr(request, "policyd", None)
    if access is None:
        raise Forbidden("PolicydMiddleware did not run for this request")
    if access.decision is not None:
        return access
    gate: Gate = request.policyd_gate
    if body is None and request.method in WRITING:
        body = json_body(request.body)
    fields = gate.writes(request.method, body, None)
    req = gate.object_request(access.principal, access.target, obj, access.context, fields)
    try:
        with claims_refused(), answers():
            found = gate.authorizer.decide(req)
            visible = None
            if gate.concealing(access.target, found[0]):  # refused: may it see the object?
                visible = gate.authorizer.decide(gate.conceal_request(req))[0].allowed
    except BadRequest as exc:
        raise gate.stored(exc) if access.target.id is not None else exc from None
    decided = gate.decided(access.principal, access.target, obj, found, fields, visible)
    access.decision, access.obj, access.decision_id = decided.decision, obj, decided.decision_id
    access.write_fields = decided.write_fields  # in place: views may hold `request.policyd`
    return access


def authorized_queryset(queryset, plan_or_access, columns: dict[str, str] | None = None):
    """`queryset` filtered by the plan; an Access brings its plan and, without `columns`,
    its model's field names (the registered ModelMap)."""
    plan = getattr(plan_or_access, "plan", plan_or_access)
    if plan is None:
        raise ValueError("this access decided one object; it has no plan to filter by")
    if columns is None:
        authz = plan_or_access.authorizer
        m = authz.mapping_of(plan.resource_type)
        columns = {name: g for name, g in authz.getters(m).items() if isinstance(g, str)}
        columns.setdefault("id", m.id if isinstance(m.id, str) else "pk")
    return queryset.filter(q(plan, columns))


__all__ = ["PolicydMiddleware", "authorized_queryset", "decide_object", "refusal_response"]
