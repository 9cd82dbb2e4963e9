"""The in-process decision point: validate, look up the generated decider, finish the
decision (writes, visibility), fail closed on anything unexpected.

The combining rule, in full: an invalid request is an error, never a decision;
an undeclared type or action is denied; any deny that holds denies; else an
allow that holds allows; else default deny. An allowed request that writes a
field no `write` rule grants is denied.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .compiler import PolicySet, compile_path
from .models import EMPTY, CheckRequest, Decision, FrozenList, RequestError, make_decision
from .validation import explain

log = logging.getLogger("policyd.engine")

_TOP_KEYS = frozenset({"principal", "action", "resource", "context", "write_fields", "dry_run"})
_ENTITY_KEYS = frozenset({"type", "id", "attrs"})
_EMPTY_DICT: dict = {}
_CACHE_MAX = 4096


class Engine:
    """Decides requests against one compiled policy set; `swap` replaces the set atomically."""

    def __init__(self, policy_set: PolicySet, clock: Callable[[], float] = _time.time):
        self.clock = clock
        self._failures_logged: set[str] = set()
        self._lock = threading.Lock()
        self._install(policy_set)

    @classmethod
    def from_path(cls, path: str | Path, clock: Callable[[], float] = _time.time) -> Engine:
        """Compile a .policy file or a directory of them (raises PolicyError)."""
        return cls(compile_path(path), clock=clock)

    @property
    def policy_set(self) -> PolicySet:
        return self._state[0]

    @property
    def version(self) -> str:
        return self._state[0].version

    def swap(self, policy_set: PolicySet) -> None:
        """Install a new set; a decision in flight finishes on the set it started with."""
        self._install(policy_set)

    def _install(self, ps: PolicySet) -> None:
        cs = ps.checked
        principals = {name: ps.validators[f"principal:{name}"] for name in cs.principals}
        resources = {name: ps.validators[f"resource:{name}"] for name in cs.resources}
        context = ps.validators.get("context")
        bits = {r: {f: 1 << i for i, f in enumerate(fields)} for r, fields in ps.fields.items()}
        role_names = frozenset(cs.roles)
        # one tuple, replaced whole: readers never see half of an old and half of a new set
        self._state = (ps, principals, resources, context, bits, role_names, {}, {})

    # ---- the hot path ------------------------------------------------------------

    def check(self, request: dict | CheckRequest, explain: bool = False) -> Decision:
        state = self._state
        if type(request) is not dict:
            request = self._as_dict(request)
        try:
            parsed = self._parse(request, state)
        except RequestError:
            raise
        except Exception:
            raise RequestError(_explain(state[0], request)) from None
        try:
            return self._decide(state, request, parsed, explain)
        except Exception as exc:  # fail closed: never allow on an unexpected failure
            return self._failed(state[0], exc)

    def _parse(self, request: dict, state) -> tuple:
        ps, principals, resources, context_v, *_ = state
        if not _TOP_KEYS.issuperset(request):
            raise ValueError
        p, r, action = request["principal"], request["resource"], request["action"]
        if not (_ENTITY_KEYS.issuperset(p) and _ENTITY_KEYS.issuperset(r)):
            raise ValueError
        ptype, pid, rtype, rid = p["type"], p["id"], r["type"], r["id"]
        if type(ptype) is not str or type(pid) is not str or type(rtype) is not str \
                or type(rid) is not str or type(action) is not str:
            raise ValueError
        now = self.clock
        P = principals[ptype](p.get("attrs", _EMPTY_DICT), now)
        ctx = request.get("context", _EMPTY_DICT)
        if context_v is not None:
            C = context_v(ctx, now)
        elif type(ctx) is not dict or ctx:
            raise ValueError
        else:
            C = _EMPTY_DICT
        rv = resources.get(rtype)
        R = rv(r.get("attrs", _EMPTY_DICT), now) if rv is not None else None
        wf = request.get("write_fields")
        if wf is not None and (type(wf) is not list or any(type(f) is not str for f in wf)):
            raise ValueError
        if type(request.get("dry_run", False)) is not bool:
            raise ValueError
        return pid, P, rtype, rid, R, C, ptype, action, wf

    def _decide(self, state, request, parsed, explain_all: bool) -> Decision:
        ps, _, _, _, bits, role_names, deny_cache, allow_cache = state
        pid, P, rtype, rid, R, C, ptype, action, wf = parsed
        warnings = _unknown_roles(P, role_names)
        deciders = ps.deciders.get(rtype)
        if deciders is None:
            return self._plain(ps, False, "unknown_resource", warnings)
        fn = deciders.get(action)
        if fn is None:
            return self._plain(ps, False, "unknown_action", warnings)
        if explain_all:
            return self._explained(ps, bits[rtype], parsed, warnings)
        outcome = fn(pid, P, rid, R, C, ptype)
        if type(outcome) is not str:  # a tuple of denies, or None for default deny
            if warnings:
                return make_decision(False, FrozenList(outcome or ("default_deny",)), EMPTY, 0.0,
                                     ps.version, warnings)
            found = deny_cache.get(outcome)
            if found is None:
                found = make_decision(False, FrozenList(outcome or ("default_deny",)), EMPTY,
                                      0.0, ps.version)
                if len(deny_cache) < _CACHE_MAX:
                    deny_cache[outcome] = found
            return found
        if wf:
            refused = _refused_writes(ps, bits[rtype], parsed, wf)
            if refused:
                return make_decision(False, FrozenList(refused), EMPTY, 0.0, ps.version, warnings)
        mask = ps.show[rtype](pid, P, rid, R, C, ptype, action) | 1
        if warnings:
            return make_decision(True, FrozenList((outcome,)),
                                 FrozenList(ps.fields_of(rtype, mask)), 0.0, ps.version, warnings)
        key = (outcome, mask)
        found = allow_cache.get(key)
        if found is None:
            found = make_decision(True, FrozenList((outcome,)),
                                  FrozenList(ps.fields_of(rtype, mask)), 0.0, ps.version)
            if len(allow_cache) < _CACHE_MAX:
                allow_cache[key] = found
        return found

    def _explained(self, ps: PolicySet, field_bits: dict, parsed, warnings) -> Decision:
        """Every rule that held: all denies, or all allows plus the show and write rules."""
        pid, P, rtype, rid, R, C, ptype, action, wf = parsed
        held = {e: [] for e in ("deny", "allow", "show", "write")}
        for rule in ps.checked.rules.get(rtype, ()):
            applies = action in rule.actions or rule.effect in ("show", "write")
            if rule.effect in held and applies and \
                    ps.conditions[rule.name](pid, P, rid, R, C, ptype, action):
                held[rule.effect].append(rule.name)
        if held["deny"] or not held["allow"]:
            reasons = held["deny"] or ["default_deny"]
            return make_decision(False, FrozenList(reasons), EMPTY, 0.0, ps.version, warnings)
        if wf:
            refused = _refused_writes(ps, field_bits, parsed, wf)
            if refused:
                return make_decision(False, FrozenList(refused), EMPTY, 0.0, ps.version, warnings)
        mask = ps.show[rtype](pid, P, rid, R, C, ptype, action) | 1
        reasons = held["allow"] + held["show"] + held["write"]
        return make_decision(True, FrozenList(reasons), FrozenList(ps.fields_of(rtype, mask)),
                             0.0, ps.version, warnings)

    @staticmethod
    def _plain(ps: PolicySet, allowed: bool, reason: str, warnings) -> Decision:
        return make_decision(allowed, FrozenList((reason,)), EMPTY, 0.0, ps.version, warnings)

    def _failed(self, ps: PolicySet, exc: Exception) -> Decision:
        where = _policy_location(ps, exc)
        key = f"{type(exc).__name__}:{where}"
        if key not in self._failures_logged:
            with self._lock:
                self._failures_logged.add(key)
            log.error("decision failed closed (%s at %s): %s", type(exc).__name__, where, exc)
        return make_decision(False, FrozenList(("error",)), EMPTY, 0.0, ps.version)

    @staticmethod
    def _as_dict(request: Any) -> Any:
        if isinstance(request, CheckRequest):
            return request.model_dump()
        return request  # explained (and refused) by the validation step


def _unknown_roles(P: dict, role_names: frozenset) -> Any:
    roles = P.get("roles")
    if not roles or role_names.issuperset(roles):
        return EMPTY
    return FrozenList(f"unknown_role:{r}" for r in sorted(set(roles) - role_names))


def _refused_writes(ps: PolicySet, field_bits: dict, parsed, wf: list[str]) -> list[str] | None:
    """`unknown_field:...` and `not_writable:...` for the fields no write rule grants."""
    pid, P, rtype, rid, R, C, ptype, action, _ = parsed
    granted = ps.write[rtype](pid, P, rid, R, C, ptype, action)
    wanted = list(dict.fromkeys(wf))
    unknown = [f for f in wanted if f not in field_bits and f != "type"]
    refused = [f for f in wanted if f not in unknown and not granted & field_bits.get(f, 0)]
    reasons = []
    if unknown:
        reasons.append("unknown_field:" + ",".join(unknown))
    if refused:
        reasons.append("not_writable:" + ",".join(refused))
    return reasons or None


def _explain(ps: PolicySet, request: Any) -> str:
    try:
        return explain(ps.checked, request)
    except Exception:  # the explanation is best effort; the refusal is not
        return "invalid request"


def _policy_location(ps: PolicySet, exc: Exception) -> str:
    tb = exc.__traceback__
    where = "engine"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith("<policyd "):
            found = ps.policy_location(tb.tb_lineno)
            if found:
                where = f"{found[0]}:{found[1]}"
        tb = tb.tb_next
    return where


