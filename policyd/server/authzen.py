"""The OpenID AuthZEN Authorization API 1.0, without HTTP: a request body to the
engine's requests, decisions to response bodies, and the three searches.

Mapping (docs/authzen.md): subject -> principal, resource -> resource, `properties` ->
attributes, `action.name` -> the action, `action.properties` and `context` -> context
attributes. AuthZEN types map to declared names exactly, or through `[authzen] types`.
Members the specification does not define, and properties or context members the set
does not declare, are ignored (the specification requires it); declared ones are
validated strictly, and stored ones are never taken from the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

from ..engine import Engine
from ..engine.models import RequestError
from ..values import printable

SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
MAX_PAGE = 1000


class BadRequest(ValueError):
    """A payload that is not an AuthZEN request (HTTP 400); the message says why (lone
    surrogates escaped, as in RequestError)."""

    def __init__(self, message: str):
        super().__init__(printable(str(message)))


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise BadRequest(f"`{where}` must be an object")
    return value


def _string(entity: dict, key: str, where: str) -> str:
    value = entity.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"`{where}.{key}` is required: a non-empty string")
    return value


class AuthZen:
    def __init__(self, engine: Engine, types: dict[str, str] | None = None,
                 expose_reasons: bool = False, response_context: bool = False,
                 secret: bytes | None = None, max_evaluations: int = 1000, metrics=None,
                 shadow=None):
        self.engine, self.types = engine, dict(types or {})
        self.expose_reasons, self.response_context = expose_reasons, response_context
        self.secret = secret or os.urandom(32)
        self.max_evaluations, self.metrics, self.shadow = max_evaluations, metrics, shadow

    # ---- mapping ----------------------------------------------------------------------

    def declared(self, authzen_type: str) -> str:
        return self.types.get(authzen_type, authzen_type)

    def _attrs(self, schema, properties, where: str) -> dict:
        """Declared, non-stored properties only; the engine validates their types."""
        if properties is None:
            return {}
        props = _object(properties, where if where == "context" else f"{where}.properties")
        if schema is None:
            return {}
        return {k: v for k, v in props.items()
                if k in schema.by_name and not schema.by_name[k].stored}

    def request(self, subject, action, resource, context) -> dict:
        """An engine request from one evaluation's four parts (raises BadRequest)."""
        s, a, r = (_object(subject, "subject"), _object(action, "action"),
                   _object(resource, "resource"))
        schema = self.engine.policy_set.schema
        ptype, rtype = self.declared(_string(s, "type", "subject")), \
            self.declared(_string(r, "type", "resource"))
        request = {
            "principal": {"type": ptype, "id": _string(s, "id", "subject"),
                          "attrs": self._attrs(schema.principals.get(ptype), s.get("properties"),
                                               "subject")},
            "action": _string(a, "name", "action"),
            "resource": {"type": rtype, "id": _string(r, "id", "resource"),
                         "attrs": self._attrs(schema.resources.get(rtype), r.get("properties"),
                                              "resource")},
        }
        ctx = self._context(schema, a.get("properties"), context)
        if ctx:
            request["context"] = ctx
        if schema.hierarchy:  # 1.2, a policyd member: the entity's direct parents
            for part, key in ((s, "principal"), (r, "resource")):
                if part.get("parents") is not None:
                    request[key]["parents"] = part["parents"]
        return request

    def _context(self, schema, action_props, context) -> dict:
        """Action properties, then context members: declared context attributes only."""
        ctx = self._attrs(schema.context, action_props, "action")
        if context is not None:
            ctx.update(self._attrs(schema.context, _object(context, "context"), "context"))
        return ctx

    # ---- decisions -------------------------------------------------------------------

    def decide(self, request: dict, request_id: str, peer: str) -> dict:
        """One AuthZEN decision object, and one decision log record. An undeclared subject
        type is a deny, not an error, as an undeclared resource type is."""
        t0 = time.perf_counter()
        if request["principal"]["type"] not in self.engine.policy_set.schema.principals:
            _, decision_id = self.engine.decide_gateway(
                request, refusal="unknown_principal", request_id=request_id, peer=peer,
                extra={"front": "authzen"})
            return self._answer(False, ["unknown_principal"], decision_id)
        decision, decision_id = self.engine.decide(request, request_id=request_id, peer=peer)
        if self.metrics is not None:
            self.metrics.decision(request["resource"]["type"], request["action"], decision,
                                  time.perf_counter() - t0)
        if self.shadow is not None:
            self.shadow.compare(request, decision, decision_id)
        return self._answer(decision.allowed, decision.reasons, decision_id, decision.outputs)

    def _answer(self, allowed: bool, reasons, decision_id: str, outputs=None) -> dict:
        out: dict = {"decision": allowed}
        if self.response_context:
            out["context"] = {"decision_id": decision_id}
            if self.expose_reasons:
                out["context"]["reasons"] = list(reasons)
        if outputs:  # 1.2: what the decision tells the caller to do, always given
            out.setdefault("context", {})["outputs"] = {k: dict(v) for k, v in outputs.items()}
        return out

    def evaluation(self, body: dict, request_id: str, peer: str) -> dict:
        body = _object(body, "body")
        for key in ("subject", "action", "resource"):
            if key not in body:
                raise BadRequest(f"`{key}` is required")
        request = self.request(body["subject"], body["action"], body["resource"],
                               body.get("context"))
        try:
            return self.decide(request, request_id, peer)
        except RequestError as exc:
            raise BadRequest(str(exc)) from None

    def evaluations(self, body: dict, request_id: str, peer: str) -> dict:
        body = _object(body, "body")
        items = body.get("evaluations")
        if items is None or items == []:
            return self.evaluation(body, request_id, peer)  # backwards compatible
        if not isinstance(items, list):
            raise BadRequest("`evaluations` must be an array")
        if len(items) > self.max_evaluations:
            raise BadRequest(f"`evaluations` holds {len(items):,} items; at most "
                             f"{self.max_evaluations:,} per call (--max-batch-decisions)")
        options = body.get("options") or {}
        semantic = _object(options, "options").get("evaluations_semantic", "execute_all")
        if semantic not in SEMANTICS:
            raise BadRequest(f"`options.evaluations_semantic` is one of {', '.join(SEMANTICS)}")
        out = []
        for item in items:
            answer = self._item(body, item, request_id, peer)
            out.append(answer)
            if semantic == "deny_on_first_deny" and not answer["decision"] or \
                    semantic == "permit_on_first_permit" and answer["decision"]:
                break  # the short circuit: the rest are not evaluated (nor returned)
        return {"evaluations": out}

    def _item(self, body: dict, item, request_id: str, peer: str) -> dict:
        """One evaluation with the top-level defaults; a bad item is decided false."""
        try:
            item = _object(item, "evaluations[]")
            parts = {k: item[k] if k in item else body.get(k)
                     for k in ("subject", "action", "resource", "context")}
            for key in ("subject", "action", "resource"):
                if parts[key] is None:
                    raise BadRequest(f"`{key}` is required (in the item or at the top level)")
            request = self.request(parts["subject"], parts["action"], parts["resource"],
                                   parts["context"])
            return self.decide(request, request_id, peer)
        except (BadRequest, RequestError) as exc:
            return {"decision": False, "context": {"error": {"status": 400,
                                                             "message": str(exc)}}}

    # ---- searches ------------------------------------------------------------------

    def search(self, kind: str, body: dict, request_id: str, peer: str) -> dict:
        """One page of a search (engine.search: a plan over the entity data for resources,
        principals decided in id order for subjects; one decision record per search)."""
        body = _object(body, "body")
        page = _object(body.get("page") or {}, "page")
        limit = page.get("limit", MAX_PAGE)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise BadRequest("`page.limit` must be a non-negative integer")
        limit = min(limit, MAX_PAGE)
        digest = self._digest(body)
        after, total = self._cursor(page.get("token"), digest) if page.get("token") else \
            (None, None)
        request, note, names = self._search_request(kind, body)
        if note:
            return {"page": {"next_token": "", "count": 0, "total": 0},
                    "context": {"note": note}, "results": []}
        try:
            found, _ = self.engine.search(kind, request, after=after, limit=limit,
                                          actions=names, request_id=request_id, peer=peer,
                                          extra={"front": "authzen"})
        except RequestError as exc:
            raise BadRequest(str(exc)) from None
        total = found.total if found.total is not None else total
        last = found.results[-1] if found.results else after
        asked = body[kind]["type"] if kind != "action" else ""
        results = [{"name": r} for r in found.results] if kind == "action" else \
            [{"type": asked, "id": r} for r in found.results]
        return {"page": {"next_token": self._token(last, total, digest) if found.more else "",
                         "count": len(results), "total": total}, "results": results}

    @staticmethod
    def _inputs(body, *parts: str) -> None:
        """The entities a search starts from must be whole: a type and an id (a name)."""
        for key in parts:
            if key not in body:
                raise BadRequest(f"`{key}` is required")
            entity = _object(body[key], key)
            for field in (("name",) if key == "action" else ("type", "id")):
                _string(entity, field, key)

    def _search_request(self, kind: str, body) -> tuple[dict, str | None, tuple]:
        """(the engine's request, a note when the search has nothing to look at, the
        action names of an action search); raises BadRequest."""
        if kind == "action":
            self._inputs(body, "subject", "resource")
            r = _object(body["resource"], "resource")
            res = self.engine.policy_set.schema.resources.get(self.declared(
                _string(r, "type", "resource")))
            if res is None:
                return {}, "the resource type is not declared", ()
            names = res.actions
            request = self.request(body["subject"], {"name": names[0]}, r, body.get("context"))
            return request, None, names
        other = "resource" if kind == "subject" else "subject"
        self._inputs(body, "action", other)
        if kind not in body:
            raise BadRequest(f"`{kind}` is required")
        target = _object(body[kind], kind)
        asked = _string(target, "type", kind)
        data = self.engine.policy_set.entities
        declared = self.declared(asked)
        table = (data.principals if kind == "subject" else data.resources).get(declared)
        if table is None:
            return {}, f"no entity data holds {kind}s of type {asked!r}", ()
        parts = {other: body[other], kind: {**target, "id": target.get("id") or "-"}}
        request = self.request(parts["subject"], body["action"], parts["resource"],
                               body.get("context"))
        if kind == "resource":  # a plan request: the type and the attributes given
            request["resource"] = {"type": declared, "attrs": request["resource"]["attrs"]}
        return request, None, ()

    # ---- page tokens: opaque, tamper-evident, bound to the request -------------------

    def _digest(self, body: dict) -> str:
        rest = {k: v for k, v in body.items() if k != "page"}
        page = {k: v for k, v in (body.get("page") or {}).items() if k != "token"}
        text = json.dumps([rest, page], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _token(self, after: str | None, total: int | None, digest: str) -> str:
        """The cursor (the last result returned) and the first page's total, bound to
        the request's digest and signed."""
        body = json.dumps([after, total, digest], separators=(",", ":")).encode()
        mac = hmac.new(self.secret, body, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body + b"." + mac).decode().rstrip("=")

    def _cursor(self, token, digest: str) -> tuple[str | None, int | None]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(raw) < 18 or raw[-17:-16] != b".":  # the MAC's 16 bytes may hold a "."
                raise ValueError
            body, mac = raw[:-17], raw[-16:]
            good = hmac.compare_digest(mac, hmac.new(self.secret, body,
                                                     hashlib.sha256).digest()[:16])
            after, total, bound = json.loads(body) if good else (None, None, None)
        except (ValueError, TypeError, UnicodeDecodeError):
            raise BadRequest("`page.token` is not a token this server issued") from None
        if not good:
            raise BadRequest("`page.token` is not a token this server issued")
        if bound != digest:
            raise BadRequest("`page.token` belongs to another request: every entity and "
                             "page parameter must stay the same while paging")
        return after, total
