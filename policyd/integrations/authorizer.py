"""`Authorizer`: one way to ask policyd from Python, in process (an `Engine`) or remote
(`DecisionClient`; `AsyncAuthorizer` over `AsyncDecisionClient`), with the same methods.

Requests can be built from application objects through declared `ModelMap`s. Nothing
here turns an error into an allow: `check` raises RequestError for a request policyd
refuses and PolicydUnavailable when a remote policyd cannot be asked; `authorize`
raises the matching `AccessRefused` for every answer but an allow.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..engine import Engine
from ..engine.compiler import PolicySet, compile_path
from ..engine.models import Decision, RequestError
from ..engine.plan import Plan
from .errors import BadRequest, Unauthenticated, Unavailable, refusal
from .mapping import Getter, ModelMap, attributes, record_types
from .masking import shown


class _Requests:
    """What both authorizers share: the set's declarations and the object mappings."""

    def __init__(self, engine: Engine | None, policy: PolicySet | None):
        self.engine, self._policy = engine, policy
        self._maps: dict[type, ModelMap] = {}
        self._cache: dict[tuple, tuple] = {}

    @property
    def policy_set(self) -> PolicySet | None:
        """The set whose routes and declared types this authorizer uses (in process: the
        engine's, following reloads; remote: the one given as `policy`, if any)."""
        return self.engine.policy_set if self.engine is not None else self._policy

    @property
    def routes(self):
        ps = self.policy_set
        return ps.routes if ps is not None else None

    def register(self, model: type, type: str, id: Getter = "id",  # noqa: A002
                 attrs: Sequence[str] | dict[str, Getter] | None = None) -> ModelMap:
        """Map objects of `model` (and its subclasses) to entities of policyd type `type`."""
        found = ModelMap(model, type, id, attrs)
        self._declared(found)  # fail now, not on the first request
        self._maps[model] = found
        self._cache.clear()
        return found

    def mapping(self, model: type) -> ModelMap:
        for cls in model.__mro__:
            if cls in self._maps:
                return self._maps[cls]
        raise TypeError(f"no policyd mapping for {model.__name__}: register it first")

    def mapping_of(self, rtype: str) -> ModelMap:
        """The mapping registered for policyd type `rtype` (the first, if several)."""
        for m in self._maps.values():
            if m.type == rtype:
                return m
        raise TypeError(f"no model is registered for {rtype!r}")

    def getters(self, m: ModelMap) -> dict[str, Getter]:
        return m.getters(self._declared(m))

    def entity(self, obj: Any, only: frozenset[str] | None = None) -> dict:
        """An entity dict for a mapped object (a dict with a `type` passes unchanged);
        `only`: just these attributes (what a plan reads of a row)."""
        if isinstance(obj, dict):
            return obj
        rtype, id_getter, getters, records, schema = self._prepared(type(obj), only)
        rid = id_getter(obj) if callable(id_getter) else getattr(obj, id_getter, None)
        out = {"type": rtype, "id": "" if rid is None else str(rid)}
        attrs = attributes(obj, getters, records, schema)
        if attrs:
            out["attrs"] = attrs
        return out

    def row_mask(self, plan, model: type):
        """A function masking one row of `model` by the plan: the attributes the plan reads,
        its verdict on the row, the fields it shows (a row it does not allow shows none)."""
        rtype, id_getter, getters, records, schema = self._prepared(model, plan.attributes)
        fields_for = plan.visible_for

        def mask(obj) -> dict:
            rid = id_getter(obj) if callable(id_getter) else getattr(obj, id_getter, None)
            attrs = attributes(obj, getters, records, schema)
            return shown(fields_for(attrs, None if rid is None else str(rid)), obj)
        return mask

    def _prepared(self, model: type, only) -> tuple:
        """What `entity` needs of a model, kept until the installed set changes."""
        ps = self.policy_set
        found = self._cache.get((model, only))
        if found is None or found[0] is not ps:
            m = self.mapping(model)
            getters = self.getters(m)
            if only is not None:
                getters = {k: g for k, g in getters.items() if k in only}
            entity, schema = self._entity_schema(m.type)
            found = self._cache[(model, only)] = (
                ps, (m.type, m.id, getters, record_types(entity, schema), schema))
        return found[1]

    def request(self, principal: Any, action: str, resource: Any, *,
                context: dict | None = None, write_fields: Sequence[str] | None = None) -> dict:
        out = {"principal": self.entity(principal), "action": action,
               "resource": self.entity(resource)}
        if context is not None:
            out["context"] = context
        if write_fields:
            out["write_fields"] = list(write_fields)
        return out

    def plan_request(self, principal: Any, action: str, resource: str | type, *,
                     context: dict | None = None, attrs: dict | None = None) -> dict:
        """A plan request for a type, given by name or by a mapped model class."""
        rtype = resource if isinstance(resource, str) else self.mapping(resource).type
        res: dict = {"type": rtype}
        if attrs:
            res["attrs"] = attrs
        out = {"principal": self.entity(principal), "action": action, "resource": res}
        if context is not None:
            out["context"] = context
        return out

    def _entity_schema(self, name: str):
        ps = self.policy_set
        if ps is None:
            return None, None
        s = ps.schema
        return s.resources.get(name) or s.principals.get(name), s

    def _declared(self, m: ModelMap) -> list[str] | None:
        entity, schema = self._entity_schema(m.type)
        if schema is not None and entity is None:
            raise ValueError(f"{m.model.__name__} maps to {m.type!r}, which the set does not "
                             "declare")
        return [a.name for a in entity.attrs if not a.stored] if entity else None


def _policy(policy: str | Path | PolicySet | None) -> PolicySet | None:
    return compile_path(policy) if isinstance(policy, str | Path) else policy


def _refused(decision: Decision, decision_id: str) -> Decision:
    if not decision.allowed:
        raise refusal(decision, decision_id)
    return decision


class Authorizer(_Requests):
    """Synchronous: `Authorizer(engine)`, `Authorizer.local(path)` or
    `Authorizer.remote(target, policy=path)` (the path only for routes and types)."""

    def __init__(self, engine: Engine | None = None, client=None,
                 policy: str | Path | PolicySet | None = None):
        if (engine is None) == (client is None):
            raise ValueError("give an Engine or a DecisionClient, not both or neither")
        super().__init__(engine, _policy(policy))
        self.client = client

    @classmethod
    def local(cls, path: str | Path, **engine_options) -> Authorizer:
        return cls(Engine.from_path(path, **engine_options))

    @classmethod
    def remote(cls, target: str, policy: str | Path | PolicySet | None = None,
               **client_options) -> Authorizer:
        from ..client import DecisionClient  # grpc only when remote
        return cls(client=DecisionClient(target, **client_options), policy=policy)

    def decide(self, request: dict) -> tuple[Decision, str]:
        if self.engine is not None:
            return self.engine.decide(request)
        return self.client.check_with_id(request)

    def check(self, request: dict) -> Decision:
        return self.decide(request)[0]

    def check_batch(self, principal: Any, items: list[dict],
                    context: dict | None = None) -> list[Decision]:
        """As `Engine.check_batch`; an item's `resource` may be a mapped object."""
        items = [{**i, "resource": self.entity(i["resource"])} for i in items]
        if self.engine is not None:
            return self.engine.check_batch(self.entity(principal), items, context)
        return self.client.check_batch(self.entity(principal), items, context)

    def decide_plan(self, request: dict) -> tuple[Plan, str]:
        if self.engine is not None:
            return self.engine.decide_plan(request)
        return self.client.plan_with_id(request)

    def plan(self, request: dict) -> Plan:
        return self.decide_plan(request)[0]

    def authorize(self, principal: Any, action: str, resource: Any, *,
                  context: dict | None = None, write_fields: Sequence[str] | None = None,
                  ) -> Decision:
        """The allowed decision, or the refusal (403, 429, 400, 503) raised."""
        request = self.request(principal, action, resource, context=context,
                               write_fields=write_fields)
        with answers():
            return _refused(*self.decide(request))

    def plan_for(self, principal: Any, action: str, resource: str | type, *,
                 context: dict | None = None) -> Plan:
        with answers():
            return self.plan(self.plan_request(principal, action, resource,
                                               context=context))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class AsyncAuthorizer(_Requests):
    """The same, awaited: in process the engine decides inline (microseconds, no thread);
    remote over `grpc.aio`."""

    def __init__(self, engine: Engine | None = None, client=None,
                 policy: str | Path | PolicySet | None = None):
        if (engine is None) == (client is None):
            raise ValueError("give an Engine or an AsyncDecisionClient, not both or neither")
        super().__init__(engine, _policy(policy))
        self.client = client

    @classmethod
    def local(cls, path: str | Path, **engine_options) -> AsyncAuthorizer:
        return cls(Engine.from_path(path, **engine_options))

    @classmethod
    def remote(cls, target: str, policy: str | Path | PolicySet | None = None,
               **client_options) -> AsyncAuthorizer:
        from ..aio_client import AsyncDecisionClient
        return cls(client=AsyncDecisionClient(target, **client_options), policy=policy)

    async def decide(self, request: dict) -> tuple[Decision, str]:
        if self.engine is not None:
            return self.engine.decide(request)
        return await self.client.check_with_id(request)

    async def check(self, request: dict) -> Decision:
        return (await self.decide(request))[0]

    async def check_batch(self, principal: Any, items: list[dict],
                          context: dict | None = None) -> list[Decision]:
        items = [{**i, "resource": self.entity(i["resource"])} for i in items]
        if self.engine is not None:
            return self.engine.check_batch(self.entity(principal), items, context)
        return await self.client.check_batch(self.entity(principal), items, context)

    async def decide_plan(self, request: dict) -> tuple[Plan, str]:
        if self.engine is not None:
            return self.engine.decide_plan(request)
        return await self.client.plan_with_id(request)

    async def plan(self, request: dict) -> Plan:
        return (await self.decide_plan(request))[0]

    async def authorize(self, principal: Any, action: str, resource: Any, *,
                        context: dict | None = None,
                        write_fields: Sequence[str] | None = None) -> Decision:
        request = self.request(principal, action, resource, context=context,
                               write_fields=write_fields)
        with answers():
            return _refused(*await self.decide(request))

    async def plan_for(self, principal: Any, action: str, resource: str | type, *,
                       context: dict | None = None) -> Plan:
        with answers():
            return await self.plan(self.plan_request(principal, action, resource,
                                                     context=context))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


class answers:
    """RequestError as 400 and an unreachable policyd as 503; anything else propagates."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            return False
        if issubclass(kind, RequestError):
            raise BadRequest(str(exc)) from None
        client = sys.modules.get("policyd.client")  # only a remote call raises it
        if client is not None and issubclass(kind, client.PolicydUnavailable):
            raise Unavailable(str(exc)) from None
        return False


_PRINCIPAL = re.compile(r"^(\w+: )?principal\b")  # a server prefixes its method's name


class claims_refused:
    """Where the principal came from a token, a principal policyd refuses (claims that do
    not fit the declared type) is a bad token: 401, as at the gateway."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, BadRequest) and \
                _PRINCIPAL.match(exc.detail):
            raise Unauthenticated(exc.detail, invalid=True) from None
        return False
