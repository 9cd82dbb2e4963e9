"""The framework-neutral steps of protecting one HTTP request: who is calling, which
route (and so which type, action and id), the context, the decision, and what the
handler gets back (`Access`). The adapters (fastapi, django) only move data in and out.

Order matters and is fixed: authenticate (401), match the route (404: undeclared),
load the object (404: none), decide with the fields the body writes (403, 429), hand
over. Headers a gateway set (`x-policyd-*`) are ignored unless `trust_gateway`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..engine.models import Decision
from ..engine.plan import ALWAYS_DENIED, Plan
from .errors import (
    AccessRefused,
    BadRequest,
    Forbidden,
    NotFound,
    StoredObjectInvalid,
    Unauthenticated,
    refusal,
)
from .mapping import attributes
from .masking import visible, written_fields

log = logging.getLogger("policyd.integrations")
WRITING = ("PATCH", "PUT")
GATEWAY = "x-policyd-"


@dataclass(frozen=True)
class Target:
    resource_type: str
    action: str
    id: str | None
    path_attrs: dict[str, str]
    route: str  # "METHOD /template", or "" for an explicit action


@dataclass
class Access:
    """What a protected handler gets: who, what, the decision (one object) or the plan
    (a collection), the loaded object, and the fields its body was allowed to write."""

    principal: dict
    target: Target
    decision: Decision | None = None
    plan: Plan | None = None
    obj: Any = None
    decision_id: str = ""
    write_fields: tuple[str, ...] = ()
    authorizer: Any = field(default=None, repr=False)
    context: dict | None = field(default=None, repr=False)
    _masks: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def action(self) -> str:
        return self.target.action

    def visible(self, obj: Any = None) -> dict:
        """`obj` (default: the loaded object) masked by the decision, or for a row of a
        collection, by the plan's visible fields for that row."""
        obj = self.obj if obj is None else obj
        if self.decision is not None:
            return visible(self.decision, obj)
        if self.plan is None:  # nothing decided yet: show nothing, say why
            raise Forbidden("the object was not decided: call decide_object first")
        if isinstance(obj, dict):  # a row as a dict of its attributes
            attrs = attributes(obj, {n: n for n in self.plan.attributes})
            rid = obj.get("id")
            return visible(self.plan.visible_for(attrs, None if rid is None else str(rid)),
                           obj)
        masks = self._masks
        mask = masks.get(type(obj))
        if mask is None:
            mask = masks[type(obj)] = self.authorizer.row_mask(self.plan, type(obj))
        return mask(obj)


class Gate:
    def __init__(self, authorizer, authenticate: Any = None,
                 context: Callable[[Any], dict] | None = None, trust_gateway: bool = False,
                 conceal: str | None = None):
        if authenticate is None:
            raise ValueError("give `authenticate`: a JwtVerifier or a function of the request "
                             "returning the principal")
        self.authorizer, self.authenticate = authorizer, authenticate
        self.context_of, self.trust_gateway = context, trust_gateway
        self.conceal = conceal  # an action (`read`): objects the caller may not do it on
        # are answered 404, as objects that do not exist are

    # ---- who, and what ------------------------------------------------------------------

    def token_principal(self, headers: Mapping[str, str]) -> dict:
        from ..authn import TokenError, bearer  # PyJWT only where tokens are verified
        try:
            return self.authenticate.verify(bearer(headers.get("authorization")))
        except TokenError as exc:
            raise Unauthenticated(str(exc), invalid=not exc.missing) from None

    def gateway_access(self, headers: Mapping[str, str], target: Target) -> Access | None:
        """A trusted gateway's `allowed` (every resource of the route allowed), or None."""
        if not self.trust_gateway or headers.get(GATEWAY + "decision") != "allowed":
            return None
        ptype = headers.get(GATEWAY + "principal-type")
        pid = headers.get(GATEWAY + "principal-id")
        if not ptype or not pid:
            return None
        shown = [f for f in headers.get(GATEWAY + "visible-fields", "").split(",") if f]
        decision = Decision(True, ["gateway"], shown)
        return Access({"type": ptype, "id": pid}, target, decision=decision,
                      decision_id=headers.get(GATEWAY + "decision-id", ""),
                      authorizer=self.authorizer)

    def target(self, method: str, path: str, action: str | None = None,
               resource: str | type | None = None, id: str | None = None) -> Target:  # noqa: A002
        if action is not None:
            if resource is None:
                raise ValueError("an explicit action needs its resource type")
            rtype = resource if isinstance(resource, str) else \
                self.authorizer.mapping(resource).type
            return Target(rtype, action, id, {}, "")
        routes = self.authorizer.routes
        if routes is None:
            raise ValueError("this authorizer has no routes: give `policy=` to the remote "
                             "authorizer, or an explicit action")
        m = routes.match(method, path)
        if m is None:
            raise NotFound("unknown_route", reasons=("unknown_route",))
        return Target(m.resource, m.action, m.id, dict(m.attrs),
                      f"{m.route.method} {m.route.template}")

    def context(self, client_ip: str | None, request: Any) -> dict | None:
        if self.context_of is not None:
            return self.context_of(request)
        ps = self.authorizer.policy_set
        declared = ps.schema.context.by_name if ps is not None and ps.schema.context else None
        out = {}
        if client_ip and (declared is None or "ip" in declared):
            out["ip"] = client_ip
        if declared is None or "time" in declared:
            out["time"] = _now()
        return out

    # ---- the decision -------------------------------------------------------------------

    def writes(self, method: str, body: Any, writes: bool | None) -> list[str]:
        if writes is None:
            writes = method in WRITING
        return written_fields(body) if writes else []

    def object_request(self, principal: dict, target: Target, obj: Any, context,
                       write_fields: Sequence[str]) -> dict:
        request = self.authorizer.request(principal, target.action, obj, context=context,
                                          write_fields=write_fields)
        res = request["resource"]
        if res["type"] != target.resource_type or \
                target.id is not None and res["id"] != target.id:
            raise NotFound("the loaded object is not the one the route names")
        attrs = res.get("attrs", {})
        if any(attrs.get(k) != v for k, v in target.path_attrs.items()):
            raise NotFound("the object does not belong to the path's parent")
        return request

    @staticmethod
    def stored(exc: BadRequest) -> AccessRefused:
        """A refusal of a request built from a loaded object: the object's attributes are
        the service's data, so a problem with them is 500 without detail (the detail may
        describe a field the caller may not see); anything else stays a 400."""
        if exc.detail.startswith(("resource.", "resource ")):
            log.error("the loaded object does not fit its declared type: %s", exc.detail)
            return StoredObjectInvalid()
        return exc

    def plan_request(self, principal: dict, target: Target, context) -> dict:
        return self.authorizer.plan_request(principal, target.action, target.resource_type,
                                            context=context, attrs=target.path_attrs or None)

    def concealing(self, target: Target, decision: Decision) -> str | None:
        """The action to ask about before answering a refusal: `conceal` when the caller
        was refused another action on a loaded object (403 if it may see the object,
        else 404); None when there is nothing to ask."""
        if self.conceal is None or decision.allowed or target.id is None or \
                target.action == self.conceal or type(refusal(decision)) is not Forbidden:
            return None  # a 429 stays a 429: the limit counts refused attempts too
        return self.conceal

    def decided(self, principal: dict, target: Target, obj: Any, found: tuple[Decision, str],
                write_fields: Sequence[str], visible: bool | None = None) -> Access:
        """The Access of an allowed decision, or the refusal: with `conceal`, a loaded
        object the caller may not even see (`visible` False, or the refused action is the
        conceal action itself) is 404, the same answer as one that does not exist."""
        decision, decision_id = found
        if not decision.allowed:
            refused = refusal(decision, decision_id)
            hide = self.conceal is not None and target.id is not None and \
                type(refused) is Forbidden and \
                (target.action == self.conceal or visible is False)
            raise NotFound("no such object") if hide else refused
        return Access(principal, target, decision=decision, obj=obj, decision_id=decision_id,
                      write_fields=tuple(write_fields), authorizer=self.authorizer)

    def conceal_request(self, request: dict) -> dict:
        """The request asking whether the caller may do `conceal` on the same object."""
        return {k: v for k, v in request.items() if k != "write_fields"} | \
            {"action": self.conceal}

    def planned(self, principal: dict, target: Target, found: tuple[Plan, str]) -> Access:
        plan, decision_id = found
        if plan.kind == ALWAYS_DENIED:
            raise AccessRefused("", decision_id, plan.reasons)
        return Access(principal, target, plan=plan, decision_id=decision_id,
                      authorizer=self.authorizer)


_clock: list = [0, ""]


def _now() -> str:
    """The current time as RFC 3339 UTC, to the second (formatted once a second)."""
    second = int(time.time())
    if _clock[0] != second:
        _clock[:] = [second, datetime.fromtimestamp(second, UTC).isoformat()
                     .replace("+00:00", "Z")]
    return _clock[1]


def json_body(raw: bytes) -> Any:
    """A request body as JSON (None when empty); anything else is a bad request."""
    import json
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
