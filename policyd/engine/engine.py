"""The in-process decision point: validate, look up the generated decider, finish the
decision (writes, visibility), fail closed on anything unexpected.

The combining rule, in full: an invalid request is an error, never a decision;
an undeclared type or action is denied; any deny that holds denies; else an
allow that holds allows; else default deny. An allowed request that writes a
field no `write` rule grants is denied. Then every applicable limit rule takes a
token, whatever was decided; an empty bucket denies.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import search
from .ancestry import ancestors_used, batch_used
from .compiler import compile_path
from .deciding import decide, plain
from .envelope import (
    attached,
    check_fields,
    complete,
    completed,
    over,
    parents_parts,
    resource_part,
    shared_parts,
)
from .explain import explain_rules
from .gateway import GatewayOutcome, outcome, recorded, refused
from .models import (
    EMPTY,
    CheckRequest,
    Decision,
    FrozenList,
    RequestError,
    SearchPage,
    make_decision,
)
from .plan import Plan
from .planner import plan as plan_request
from .planner import plan_parts
from .policyset import PolicySet
from .ratelimit import PASSED, MemoryStore, RateStore, StoreUnavailable
from .rates import rate_limited, store_unavailable
from .records import DecisionIds, Recorder
from .retire import counts, held_by, retire
from .runtime import MissingData
from .state import Installed
from .validation import explain_request

log = logging.getLogger("policyd.engine")

_EMPTY_DICT: dict = {}


class Engine:
    """Decides requests against one compiled policy set; `swap` replaces the set atomically."""

    def __init__(self, policy_set: PolicySet, clock: Callable[[], float] = _time.time,
                 rate_store: RateStore | None = None, rate_failure: str = "open",
                 decision_sink: Callable[[dict], None] | None = None,
                 log_attributes: bool = False, fast_paths: bool = True):
        if rate_failure not in ("open", "closed"):
            raise ValueError("rate_failure is 'open' or 'closed'")
        self.clock = clock
        self._rate_store = rate_store if rate_store is not None else MemoryStore()
        self.rate_failure = rate_failure
        self.decision_sink = decision_sink
        self.log_attributes = log_attributes
        self.fast_paths = fast_paths  # False: every request takes the general path
        self.ids = DecisionIds()
        self.recorder = Recorder(decision_sink, self.ids)
        self._failures_logged: set[str] = set()
        self._lock = threading.Lock()
        self._install(policy_set)

    @classmethod
    def from_path(cls, path: str | Path, data=(), **options) -> Engine:
        """Compile a .policy file or a directory of them (raises PolicyError), with entity
        data files at the `data` path (one, or a sequence) too; `options` are the
        constructor's (clock, rate_store, rate_failure, decision_sink, ...)."""
        return cls(compile_path(path, data=data), **options)

    @property
    def rate_store(self) -> RateStore:
        return self._rate_store

    @rate_store.setter
    def rate_store(self, store: RateStore) -> None:
        """A new store (the test runner's, per test): the fast path is bound to it again."""
        self._rate_store = store
        self._install(self._state.ps)

    @property
    def policy_set(self) -> PolicySet:
        return self._state.ps

    @property
    def version(self) -> str:
        return self._state.ps.version

    def swap(self, policy_set: PolicySet) -> None:
        """Install a new set; a decision in flight finishes on the set it started with."""
        self._install(policy_set)

    def _install(self, ps: PolicySet) -> None:
        before = held_by(ps)
        state = Installed.of(ps, self.log_attributes)
        if self.fast_paths and ps.fast is not None:  # bound to this engine and this state
            general = functools.partial(self._general, state=state)
            state = dataclasses.replace(state, fast=ps.fast(
                self.clock, self._fast_limit, general, self._rate_store.acquire))
            del general
        old, retiring = getattr(self, "_state", None), getattr(self, "_counts", None)
        self._state = state  # one assignment: atomic
        self._counts = counts(state, ps, before)
        if old is not None and retiring is not None:
            retire(old, retiring)
            del old
        if self.decision_sink is None:  # the bare decision, not even one more call
            self.check = self._check if state.fast is None else state.fast

    # ---- decisions with their records -------------------------------------------------

    def check(self, request: dict | CheckRequest, explain: bool = False) -> Decision:
        """Decide one request. Raises RequestError for an invalid request; any other
        failure denies with reason `error` (fail closed). With a decision sink, the
        decision's record goes to it."""
        return self.decide(request, explain)[0]

    def decide(self, request: dict | CheckRequest, explain: bool = False, *,
               request_id: str = "", peer: str = "") -> tuple[Decision, str]:
        """The decision and its unique decision_id; the record goes to the sink, if any.
        One snapshot of the installed state decides and describes the decision."""
        t0, state = _time.perf_counter(), self._state
        if type(request) is not dict:
            request = self._as_dict(request)
        decision = self._check(request, explain, state)
        via = None
        if self.recorder.sink is not None and state.ps.rules_with_in and decision.reasons:
            via = ancestors_used(state, request, decision)  # 1.2
        return decision, self.recorder.record(state.records, request, decision, t0,
                                              request_id, peer, via and {"via": via})

    def decide_batch(self, principal: dict, items: list[dict], context: dict | None = None,
                     dry_run: bool = False, *, request_id: str = "",
                     peer: str = "") -> list[tuple[Decision, str]]:
        """`check_batch` with a decision_id (and a record, with a sink) per decision."""
        t0, state = _time.perf_counter(), self._state
        decisions = self._check_batch(state, principal, items, context, dry_run)
        via = None
        if self.recorder.sink is not None and state.ps.rules_with_in:  # 1.2
            via = batch_used(state, principal, items, decisions)
        ids = self.recorder.record_batch(state.records, principal, items, context, dry_run,
                                         decisions, t0, request_id, peer, via)
        return list(zip(decisions, ids, strict=True))

    def plan(self, request: dict, *, request_id: str = "", peer: str = "") -> Plan:
        """Which resources of a type the principal may act on (docs/plans.md)."""
        return self.decide_plan(request, request_id=request_id, peer=peer)[0]

    def decide_plan(self, request: dict, *, request_id: str = "",
                    peer: str = "") -> tuple[Plan, str]:
        """The plan and its decision_id; its record (with `kind`) goes to the sink."""
        t0, state = _time.perf_counter(), self._state
        found = plan_request(state, request, self.clock)
        return found, self.recorder.record(state.records, request, found, t0, request_id, peer)

    def search(self, kind: str, request: dict, *, after: str | None = None,
               limit: int = 1000, actions=(), request_id: str = "", peer: str = "",
               extra: dict | None = None) -> tuple[SearchPage, str]:
        """One page of a search over the entity data (engine/search.py): `subject` (the
        stored principals of the request's principal type), `resource` (the stored
        resources of its resource type) or `action` (of `actions`), each as the rest of
        the request allows; one record for the whole search. Raises RequestError."""
        t0, state = _time.perf_counter(), self._state
        if kind == "resource":
            page = search.resources(state, request, self.clock, after, limit)
        elif kind == "subject":
            page = search.subjects(state, request, self.clock, self._failed, after, limit)
        else:
            page = search.actions(state, request, self.clock, self._failed, actions, after,
                                  limit)
        return page, self.recorder.record(state.records, request, page, t0, request_id, peer,
                                          extra)

    def explain(self, request: dict) -> dict:
        """The decision and every rule of the action: held or not, and for one that did
        not hold, the first false part of it with the values compared (docs/api.md)."""
        state = self._state
        parts = self._completed(state, request)
        decision = self._check(request, False, state)
        if type(parts) is str or parts[6] is None:  # missing data, or an unknown type
            return {"decision": decision.to_dict(), "rules": []}
        pid, P, C, ptype, rtype, rid, R = parts
        rules = explain_rules(state.ps, pid, P, rtype, rid, R, C, ptype, request["action"])
        return {"decision": decision.to_dict(), "rules": rules}

    def _completed(self, state: Installed, request: dict):
        """envelope.completed, a request that does not fit the declarations refused as
        check refuses it."""
        try:
            return completed(state, request, self.clock)
        except Exception:
            raise RequestError(self._problem(state, request)) from None

    def decide_gateway(self, request: dict | None, *, refusal: str = "", request_id: str = "",
                       peer: str = "", extra: dict | None = None) -> tuple[GatewayOutcome, str]:
        """A gateway's decision (engine.gateway) and its one record, with `extra` fields;
        `refusal` records a request refused before planning (no token, no route)."""
        t0, state = _time.perf_counter(), self._state
        if refusal:
            found = GatewayOutcome("denied", refused(state, refusal), (refusal,))
        else:
            plan, parts = plan_parts(state, request, self.clock)
            found = outcome(state, plan, parts, self.rate_store, self.clock, self.rate_failure)
            if found.outputs:  # 1.2: logged always, as for check
                extra = {**(extra or {}), "outputs": found.outputs}
        decision_id = self.recorder.record(state.records, request or {}, recorded(found), t0,
                                           request_id, peer, extra)
        return found, decision_id

    # ---- the hot path ------------------------------------------------------------

    def _check(self, request: dict | CheckRequest, explain: bool = False,
               state: Installed | None = None) -> Decision:
        """Decide one request (the hot path: no record, no id): the generated fast path,
        which hands what it does not cover to the general path."""
        if state is None:
            state = self._state
        if state.fast is not None:
            return state.fast(request, explain)
        return self._general(request, explain, state)

    def _general(self, request: dict | CheckRequest, explain: bool = False,
                 state: Installed | None = None) -> Decision:
        """Any request, from scratch. The envelope is checked inline by counting keys and
        exact type tests; anything off goes to the general validation path, which names
        the problem (the fast path never guesses)."""
        if state is None:
            state = self._state
        if type(request) is not dict:
            request = self._as_dict(request)
        try:
            p, r, action = request["principal"], request["resource"], request["action"]
            ctx, wf, dry = request.get("context"), request.get("write_fields"), \
                request.get("dry_run")
            pattrs, rattrs = p.get("attrs"), r.get("attrs")
            if len(request) != 3 + (ctx is not None) + (wf is not None) + (dry is not None) \
                    or len(p) != 2 + (pattrs is not None) + ("parents" in p) \
                    or len(r) != 2 + (rattrs is not None) + ("parents" in r):
                raise ValueError
            ptype, pid, rtype, rid = p["type"], p["id"], r["type"], r["id"]
            principals, resources, context_v, q, entities, limiters = state.hot
            if type(pid) is not str or type(rid) is not str or type(action) is not str \
                    or not pid or not rid:
                raise ValueError
            if (len(pid) > q or len(rid) > q or len(action) > q) \
                    and over(state.max_bytes, pid, rid, action):
                raise ValueError
            now = self.clock
            P = principals[ptype](_EMPTY_DICT if pattrs is None else pattrs, now)
            if context_v is not None:
                C = context_v(_EMPTY_DICT if ctx is None else ctx, now)
            elif ctx:
                raise ValueError
            else:
                C = _EMPTY_DICT
            rv = resources.get(rtype)
            if rv is not None:
                R = rv(_EMPTY_DICT if rattrs is None else rattrs, now)
            elif type(rtype) is not str or over(state.max_bytes, rtype):
                raise ValueError  # an undeclared type is decided; it must still be a name
            else:
                R = None
            if wf is not None:
                check_fields(state, wf)
            if dry is not None and type(dry) is not bool:
                raise ValueError
            sent = parents_parts(state, p, r, R) if "parents" in p or "parents" in r else None
        except Exception:
            raise RequestError(self._problem(state, request)) from None
        if entities is not None:  # stored attributes from the set's entity data
            found = entities.attach(ptype, pid, P, rtype, rid, R)
            if type(found) is str:
                return plain(state.ps, found, EMPTY)
            P, R = found
        if sent is not None:  # the ancestors of parents the request sent (1.2)
            P, R = attached(state, sent, ptype, pid, P, rtype, rid, R)
        decision = decide(state, self._failed, pid, P, rtype, rid, R, C, ptype, action, wf, explain)
        if R is not None:
            limiter = limiters[rtype].get(action)
            if limiter is not None:  # step 8, inline: it runs on every limited request
                try:
                    buckets = limiter(pid, P, rid, R, C, ptype)
                    if buckets:
                        verdict = self.rate_store.acquire(buckets, self.clock(), dry is True)
                        if verdict is not PASSED:
                            return rate_limited(decision, verdict)
                except Exception as exc:
                    return self._rate_failed(state.ps, decision, exc)
        return decision

    def check_batch(self, principal: dict, items: list[dict], context: dict | None = None,
                    dry_run: bool = False) -> list[Decision]:
        """One decision per (item, action), in order; an item is {"resource", "actions",
        "write_fields"}. The principal and context are validated once and each resource once:
        the same decisions as `check` on each pair, for less work."""
        return self._check_batch(self._state, principal, items, context, dry_run)

    def _check_batch(self, state: Installed, principal: dict, items: list[dict],
                     context: dict | None, dry_run: bool) -> list[Decision]:
        ps = state.ps
        base: dict = {"principal": principal, "action": ""}
        if context is not None:
            base["context"] = context
        if dry_run:
            base["dry_run"] = True
        shared = None
        out: list[Decision] = []
        for index, item in enumerate(items):
            resource = item.get("resource") if type(item) is dict else None
            actions = item.get("actions") if type(item) is dict else None
            wf = (item.get("write_fields") or None) if type(item) is dict else None
            if type(resource) is not dict or type(actions) is not list:
                raise RequestError(f"items[{index}]: needs a resource and a list of actions")
            request = {**base, "resource": resource, "action": actions[0] if actions else ""}
            if wf is not None:
                request["write_fields"] = wf
            try:
                if shared is None:
                    shared = shared_parts(state, request, self.clock)
                rtype, rid, R = resource_part(state, resource, actions, wf, self.clock)
            except Exception:
                problem = self._problem(state, request)
                raise RequestError(problem if shared is None else f"items[{index}]: {problem}"
                                   ) from None
            pid, P, C, ptype = shared
            found = complete(state, principal, resource, ptype, pid, P, rtype, rid, R)
            if type(found) is str:
                out.extend(plain(ps, found, EMPTY) for _ in actions)
                continue
            P, R = found
            limiters = ps.limiters.get(rtype, {})
            for action in actions:
                decision = decide(state, self._failed, pid, P, rtype, rid, R, C, ptype, action,
                                  wf, False)
                limiter = limiters.get(action)
                if limiter is not None:
                    decision = self._limit(ps, limiter, decision, pid, P, rid, R, C, ptype,
                                           dry_run)
                out.append(decision)
        return out

    def _limit(self, ps: PolicySet, limiter, decision: Decision, pid, P, rid, R, C, ptype,
               dry_run: bool) -> Decision:
        """Step 8: every applicable bucket gives a token, or the request is rate limited;
        whatever the policy decided (refused attempts count too)."""
        try:
            buckets = limiter(pid, P, rid, R, C, ptype)
            if buckets:
                verdict = self.rate_store.acquire(buckets, self.clock(), dry_run)
                if verdict is not PASSED:
                    return rate_limited(decision, verdict)
        except Exception as exc:
            return self._rate_failed(ps, decision, exc)
        return decision

    def _fast_limit(self, decision: Decision, verdict) -> Decision:
        """The fast path's step 8 when the store refused (a verdict with exhausted buckets)
        or failed (the exception): it never raises."""
        if isinstance(verdict, Exception):
            return self._rate_failed(self._state.ps, decision, verdict)
        return rate_limited(decision, verdict)

    def _rate_failed(self, ps: PolicySet, decision: Decision, exc: Exception) -> Decision:
        """The store could not answer (the configured failure mode), or a limiter failed."""
        if not isinstance(exc, StoreUnavailable):
            return self._failed(ps, exc)
        return decision if self.rate_failure == "open" else store_unavailable(decision)

    # ---- the general validation path (batches, coverage; explained when it refuses) ----

    @staticmethod
    def _problem(state: Installed, request) -> str:
        return explain_request(state.ps.schema, request, state.max_bytes)

    def rules_held(self, request: dict) -> list[str]:
        """The full name of every rule, limits included, whose condition holds for the
        request (what test coverage counts). Raises RequestError like `check`."""
        state = self._state
        parts = self._completed(state, request)
        if type(parts) is str or parts[6] is None or \
                request["action"] not in state.ps.deciders[parts[4]]:
            return []  # missing data, or the inventory step decides: no rule is evaluated
        pid, P, C, ptype, rtype, rid, R = parts
        return [rule.name for rule in state.ps.held((pid, P, rtype, rid, R, C, ptype,
                                                     request["action"]))]

    def _failed(self, ps: PolicySet, exc: Exception) -> Decision:
        if isinstance(exc, MissingData):  # a reference the entity data does not hold
            return make_decision(False, FrozenList((f"missing_data:{exc.path}",)), EMPTY, 0.0,
                                 ps.version)
        where = ps.location_of(exc)
        key = f"{type(exc).__name__}:{where}"
        if key not in self._failures_logged:
            with self._lock:
                self._failures_logged.add(key)
            log.error("decision failed closed (%s at %s): %s", type(exc).__name__, where, exc)
        return make_decision(False, FrozenList(("error",)), EMPTY, 0.0, ps.version)

    @staticmethod
    def _as_dict(request: Any) -> Any:
        if isinstance(request, CheckRequest):
            out = request.model_dump()
            for part in ("principal", "resource"):  # sent only where there are any
                if not out[part]["parents"]:
                    del out[part]["parents"]
            return out
        return request  # explained (and refused) by the validation step
